"""torch.hub entry point, with RoBERTa's arguments:

    torch.hub.load(REPO_DIR, "spanbert", "checkpoints", "checkpoint_best.pt", "data-bin/x", source="local")
"""

dependencies = ["torch", "fairseq", "tokenizers"]


def spanbert(model_name_or_path, checkpoint_file=None, data_name_or_path=None, **overrides):
    """A trained span_bert checkpoint with its tokenizer, as a `SpanBertHubInterface`.

    Without checkpoint_file: checkpoint_best.pt, else checkpoint_last.pt, else model.pt. The
    vocabulary is found beside the checkpoint, else in data_name_or_path, else in the data
    directory the checkpoint was trained on.
    """
    from spanbert_fairseq import SpanBertModel

    return SpanBertModel.from_pretrained(model_name_or_path, checkpoint_file, data_name_or_path, **overrides)
