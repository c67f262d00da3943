"""What recipes/finetune_squad.sh needs to know before fairseq-train, one value a line:

    python recipes/squad_plan.py PRETRAINED TRAIN_JSON MAX_LEN STRIDE BATCH EPOCHS [INPUT_FORMAT]

prints the checkpoint file, its vocabulary directory, the model flags it was built with (one line,
space-separated), the number of training windows and the number of updates of EPOCHS epochs.
PRETRAINED: a fairseq-train checkpoint, a save directory, or spanbert-import's output directory.
"""

import math
import sys

from spanbert_fairseq.checkpoint_io import find_vocabulary_dir, load_span_bert_checkpoint, vocabulary_file
from spanbert_fairseq.data.dictionary import BertDictionary
from spanbert_fairseq.hub.loading import find_checkpoint
from spanbert_fairseq.interop.span_bert_checkpoint import fine_tuning_arch_flags, model_args_of
from spanbert_text.errors import run_cli
from spanbert_text.qa_windows import WindowParams, encode_question, windows
from spanbert_text.squad import read_questions
from spanbert_text.tokenization import load_text_tokenizer


def main(argv):
    if len(argv) not in (6, 7):
        raise SystemExit(__doc__)
    pretrained, train_json, max_len, stride, batch, epochs = argv[:6]
    checkpoint = find_checkpoint(pretrained)
    state = load_span_bert_checkpoint(checkpoint)
    vocab_dir = find_vocabulary_dir(checkpoint, state["cfg"], how="put dict.txt or vocab.txt beside the checkpoint")
    dictionary = BertDictionary.load(vocabulary_file(vocab_dir))
    tokenizer = load_text_tokenizer(vocab_dir, dictionary)
    params = WindowParams(max_seq_length=int(max_len), doc_stride=int(stride))
    questions, _ = read_questions(train_json, argv[6] if len(argv) == 7 else "squad")
    contexts, count = {}, 0
    for q in questions:
        encoded = encode_question(q, tokenizer, dictionary, params, f"{train_json}: question {q.qid}", contexts)
        count += len(windows(encoded, params))
    print(checkpoint)
    print(vocab_dir)
    print(" ".join(fine_tuning_arch_flags(model_args_of(state["cfg"]))))
    print(count)
    print(int(epochs) * math.ceil(count / int(batch)))


if __name__ == "__main__":
    sys.exit(run_cli("squad_plan.py", main, sys.argv[1:]))
