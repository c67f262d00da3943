"""The span_bert task's data: vocabulary, binaries, blocks, span masking and the batch collater."""

try:
    from . import span_masking_fast  # noqa: F401  (the compiled kernel every dataset here uses)
except ImportError as err:  # the package was copied or cloned without building its extension
    raise ImportError(
        "spanbert_fairseq.data.span_masking_fast is not built; run `pip install --no-build-isolation -e .` "
        "in the repository (scripts/setup.sh does)"
    ) from err
