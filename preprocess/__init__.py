"""spanbert-preprocess: raw text to fairseq binaries for the span_bert task."""
