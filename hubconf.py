"""torch.hub entry point: torch.hub.load(REPO_DIR, "spanbert", source="local", model_dir=..., ...)."""

dependencies = ["torch", "fairseq", "tokenizers"]


def spanbert(model_dir, checkpoint_file="checkpoint_best.pt"):
    """A trained span_bert checkpoint with its tokenizer, as a `SpanBertHubInterface`.

    model_dir holds the checkpoint and the vocabulary: dict.txt or vocab.txt, plus tokenizer.json /
    vocab.txt (WordPiece) or spm.model (SentencePiece).
    """
    from spanbert_fairseq import SpanBertModel

    return SpanBertModel.from_pretrained(model_dir, checkpoint_file=checkpoint_file)
