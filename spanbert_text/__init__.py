"""The text layer: vocabulary files, tokenizers, the fairseq mmap index format and atomic file writes.

It imports neither torch nor fairseq, so spanbert-preprocess stays fast to start; the plugin, the
hub and the checkpoint tools build on it. Its user-input errors share one base class
(`errors.UserInputError`) and one command-line error path (`errors.run_cli`).
"""
