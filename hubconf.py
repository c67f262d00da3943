"""torch.hub entry point: torch.hub.load(REPO_DIR, "spanbert", source="local", model_dir=..., ...)."""

dependencies = ["torch", "fairseq", "tokenizers"]


def spanbert(model_dir, checkpoint_file=None):
    """A trained span_bert checkpoint with its tokenizer, as a `SpanBertHubInterface`.

    model_dir holds the checkpoint and the vocabulary: dict.txt or vocab.txt, plus tokenizer.json /
    vocab.txt (WordPiece) or spm.model (SentencePiece). Without checkpoint_file: checkpoint_best.pt,
    else checkpoint_last.pt, else model.pt.
    """
    from spanbert_fairseq import SpanBertModel

    return SpanBertModel.from_pretrained(model_dir, checkpoint_file=checkpoint_file)
