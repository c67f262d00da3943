"""Write a span_bert checkpoint with another checkpoint's config and vocabulary but fresh weights.

    python recipes/random_init_checkpoint.py CHECKPOINT SEED OUT_DIR

The baseline "no pretraining" of a fine-tuning comparison: the model fairseq-train would build at
update 0 with `--seed SEED` (the plugin's own initialisation), saved as OUT_DIR/checkpoint_last.pt
with the vocabulary and tokenizer files beside it, so that it goes wherever a pretrained checkpoint goes.
"""

import os
import shutil
import sys

import torch

from spanbert_fairseq.checkpoint_io import (
    find_vocabulary_dir,
    load_span_bert_checkpoint,
    safe_load,
    save_atomically,
    vocabulary_file,
)
from spanbert_fairseq.data.dictionary import BertDictionary
from spanbert_fairseq.models.span_bert import SpanBertModel
from spanbert_text.errors import UserInputError, run_cli

# What the hub and the fine-tuning recipes look for beside a checkpoint.
VOCABULARY_AND_TOKENIZER = ("dict.txt", "vocab.txt", "tokenizer.json", "spm.model")


def main(argv):
    if len(argv) != 3 or not argv[1].isdigit():
        raise UserInputError(f"usage: {sys.argv[0]} CHECKPOINT SEED OUT_DIR (SEED a whole number), got {argv}")
    checkpoint, seed, out = argv[0], int(argv[1]), argv[2]
    state = load_span_bert_checkpoint(checkpoint)
    vocabulary_dir = find_vocabulary_dir(checkpoint, state["cfg"])
    vocabulary = vocabulary_file(vocabulary_dir)
    torch.manual_seed(seed)
    model = SpanBertModel.for_dictionary(state["cfg"].model, BertDictionary.load(vocabulary))
    saved = safe_load(checkpoint)  # as fairseq wrote it (plain containers), not the loaded OmegaConf config
    saved["model"] = model.state_dict()
    os.makedirs(out, exist_ok=True)
    for name in VOCABULARY_AND_TOKENIZER:
        if os.path.isfile(os.path.join(vocabulary_dir, name)):
            shutil.copy(os.path.join(vocabulary_dir, name), os.path.join(out, name))
    path = os.path.join(out, "checkpoint_last.pt")
    save_atomically(saved, path)
    size = sum(p.numel() for p in model.parameters())
    print(f"random_init_checkpoint: {size:,} parameters drawn with seed {seed}, config of {checkpoint} -> {path}")


if __name__ == "__main__":
    sys.exit(run_cli("random_init_checkpoint", main, sys.argv[1:]))
