"""Print span-fill predictions of a trained span_bert checkpoint (the last step of recipes/demo.sh).

    python recipes/demo_fill_spans.py MODEL_DIR [CHECKPOINT_FILE]

Hides a phrase of each sentence below behind one [MASK] per word piece and shows what the MLM head
(from the whole context) and the SBO head (from the two tokens around the span only) put back.
"""

import sys

from spanbert_fairseq import SpanBertModel

# Sentences in the style of the demo corpus (Python's own documentation), with the phrase to hide.
EXAMPLES = [
    ("The return statement leaves the current function call.", "function"),
    ("If the condition is true, the body of the loop is executed.", "the loop"),
    ("This function returns a new list of strings.", "list"),
    ("An exception is raised if the file does not exist.", "is raised"),
    ("The default value of this argument is None.", "None"),
    ("Keyword arguments must follow positional arguments.", "positional"),
]


def main(argv):
    if not 1 <= len(argv) <= 2:
        sys.exit(__doc__)
    hub = SpanBertModel.from_pretrained(argv[0], checkpoint_file=argv[1] if len(argv) == 2 else "checkpoint_best.pt")
    for sentence, phrase in EXAMPLES:
        pieces = len(hub.encode(phrase)) - 2  # without [CLS] and [SEP]
        masked = sentence.replace(phrase, " ".join(["[MASK]"] * pieces), 1)
        span = hub.fill_spans(masked, topk=3)[0]
        print(f"\n  {masked}")
        print(f"    hidden: {phrase!r:24} MLM: {span['mlm']!r:24} SBO: {span['sbo']!r}")
        for i, (mlm, sbo) in enumerate(zip(span["mlm_topk"], span["sbo_topk"])):
            print(f"    piece {i}: MLM top-3 {' '.join(mlm):30} SBO top-3 {' '.join(sbo)}")


if __name__ == "__main__":
    main(sys.argv[1:])
