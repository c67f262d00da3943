"""Inference on a trained span_bert checkpoint: encode/decode text, features, span filling.

Everything is offline: the tokenizer comes from the model directory (tokenizer.json or vocab.txt
for WordPiece, spm.model for SentencePiece); there is no default BPE to download.
"""

import os
import re

import torch
from torch import nn

from ..data.dictionary import SENTENCEPIECE_WORD_START, WORDPIECE_CONTINUATION, BertDictionary

MASK_MARKERS = ("[MASK]", "<mask>")  # either spelling marks one masked token in `fill_spans` text


class WordPieceText:
    """BERT WordPiece: tokenizer.json as spanbert-preprocess saved it, or a bare vocab.txt."""

    def __init__(self, directory, dictionary):
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

        tokenizer_json = os.path.join(directory, "tokenizer.json")
        if os.path.exists(tokenizer_json):
            self.tokenizer = Tokenizer.from_file(tokenizer_json)
            # HF tokenizer.json files often pad or truncate to a fixed length (MiniLM's pads to 128).
            self.tokenizer.no_padding()
            self.tokenizer.no_truncation()
        else:
            model = models.WordPiece(vocab=dict(dictionary.indices), unk_token=dictionary.unk_word)
            self.tokenizer = Tokenizer(model)
            # An uncased vocab (no token changes under lower()) means BERT uncased's normaliser.
            cased = any(s != s.lower() for s in dictionary.symbols if not s.startswith("["))
            self.tokenizer.normalizer = normalizers.BertNormalizer(lowercase=not cased)
            self.tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()

    def pieces(self, text):
        return self.tokenizer.encode(text, add_special_tokens=False).tokens

    @staticmethod
    def detokenize(pieces):
        return " ".join(pieces).replace(" " + WORDPIECE_CONTINUATION, "")


class SentencePieceText:
    def __init__(self, model_path):
        import sentencepiece as spm

        self.processor = spm.SentencePieceProcessor(model_file=model_path)

    def pieces(self, text):
        return self.processor.encode(text, out_type=str)

    @staticmethod
    def detokenize(pieces):
        return "".join(pieces).replace(SENTENCEPIECE_WORD_START, " ").strip()


# What from_pretrained loads when no checkpoint_file is named: fairseq-train's best, then its
# last, then the file spanbert-import writes.
DEFAULT_CHECKPOINTS = ("checkpoint_best.pt", "checkpoint_last.pt", "model.pt")


def find_checkpoint(model_dir, checkpoint_file=None):
    names = DEFAULT_CHECKPOINTS if checkpoint_file is None else (checkpoint_file,)
    for name in names:
        path = name if os.path.isabs(name) else os.path.join(model_dir, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"checkpoint not found in {model_dir}: looked for {', '.join(names)}")


def load_text_tokenizer(directory, dictionary):
    if os.path.exists(os.path.join(directory, "spm.model")):
        return SentencePieceText(os.path.join(directory, "spm.model"))
    if os.path.exists(os.path.join(directory, "tokenizer.json")) or os.path.exists(
        os.path.join(directory, "vocab.txt")
    ):
        return WordPieceText(directory, dictionary)
    raise FileNotFoundError(
        f"{directory}: no tokenizer found; put the vocabulary the model was trained with next to the "
        "checkpoint: vocab.txt (or tokenizer.json) for WordPiece, or spm.model for SentencePiece"
    )


def load_dictionary(directory):
    for name in ("dict.txt", "vocab.txt"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return BertDictionary.load(path)
    raise FileNotFoundError(f"{directory}: neither dict.txt nor vocab.txt found (the model's vocabulary)")


class SpanBertHubInterface(nn.Module):
    """A trained SpanBERT with its tokenizer (cf. fairseq's RobertaHubInterface)."""

    def __init__(self, cfg, model, dictionary, text_tokenizer):
        super().__init__()
        self.cfg = cfg
        self.model = model.eval()
        self.dictionary = dictionary
        self.text_tokenizer = text_tokenizer
        self.register_buffer("_float_tensor", torch.tensor([0], dtype=torch.float))  # tracks the device

    @classmethod
    def from_pretrained(cls, model_dir, checkpoint_file=None):
        from fairseq import checkpoint_utils

        from .span_bert import SpanBertEncoder, SpanBertModel

        model_dir = os.path.abspath(os.path.expanduser(str(model_dir)))
        path = find_checkpoint(model_dir, checkpoint_file)
        dictionary = load_dictionary(model_dir)
        text_tokenizer = load_text_tokenizer(model_dir, dictionary)
        state = checkpoint_utils.load_checkpoint_to_cpu(path)
        cfg = state["cfg"]
        model = SpanBertModel(cfg.model, SpanBertEncoder(cfg.model, dictionary))
        model.load_state_dict(state["model"], strict=True)
        return cls(cfg, model, dictionary, text_tokenizer)

    @property
    def device(self):
        return self._float_tensor.device

    def encode(self, text):
        """text -> 1-D LongTensor `[CLS] pieces [SEP]`. `[MASK]` / `<mask>` become the mask id."""
        ids = [self.dictionary.cls()]
        for part in re.split("(" + "|".join(map(re.escape, MASK_MARKERS)) + ")", text):
            if part in MASK_MARKERS:
                ids.append(self.dictionary.mask())
            elif part.strip():
                ids.extend(self.dictionary.index(p) for p in self.text_tokenizer.pieces(part))
        ids.append(self.dictionary.sep())
        return torch.tensor(ids, dtype=torch.long)

    def decode(self, tokens):
        """1-D ids -> text, without [CLS]/[SEP]/[PAD]."""
        skip = {self.dictionary.cls(), self.dictionary.sep(), self.dictionary.pad()}
        pieces = [self.dictionary[int(t)] for t in tokens if int(t) not in skip]
        return self.text_tokenizer.detokenize(pieces)

    def extract_features(self, tokens):
        """1-D or B x T ids -> B x T x C last-layer states."""
        if tokens.dim() == 1:
            tokens = tokens.unsqueeze(0)
        self._check_length(tokens)
        with torch.no_grad():
            return self.model.extract_features(tokens.to(self.device))

    def fill_spans(self, masked_text, topk=1):
        """Predict the tokens of every masked span with both heads.

        masked_text: text where each token to predict is written `[MASK]` (or `<mask>`); a run of
        adjacent masks is one span, whose boundaries are the tokens just left and right of it
        ([CLS]/[SEP] for a span at the edge, a context training never gives the SBO head).
        Returns one dict per span: "mlm" and "sbo" (the span filled with each head's best tokens,
        as text) and "mlm_topk" / "sbo_topk" (per position, the `topk` best pieces).
        """
        tokens = self.encode(masked_text)
        spans = self._mask_runs(tokens)
        if not spans:
            raise ValueError(f"no [MASK] in {masked_text!r}")
        self._check_length(tokens[None])
        # One SBO pair per span; its targets are the span's positions 0..len-1.
        lengths = [end - start for start, end in spans]
        P = max(lengths)
        if P > self.model.cfg.max_pair_targets:
            raise ValueError(f"a span of {P} masks is longer than max_pair_targets={self.model.cfg.max_pair_targets}")
        pairs = torch.tensor([[[start - 1, end] for start, end in spans]])  # 1 x K x 2
        pair_target_mask = torch.tensor([[[i < n for i in range(P)] for n in lengths]])  # 1 x K x P
        masked_tokens = tokens.eq(self.dictionary.mask())[None]
        with torch.no_grad():
            mlm_logits, sbo_logits = self.model(
                tokens[None].to(self.device), pairs=pairs.to(self.device),
                masked_tokens=masked_tokens.to(self.device), pair_target_mask=pair_target_mask.to(self.device),
            )
        # Both outputs list the masked tokens left to right, span by span.
        mlm_top = mlm_logits.topk(topk, dim=-1).indices.cpu()
        sbo_top = sbo_logits.topk(topk, dim=-1).indices.cpu()
        results, first = [], 0
        for n in lengths:
            rows = slice(first, first + n)
            results.append({
                "mlm": self.decode(mlm_top[rows, 0]),
                "sbo": self.decode(sbo_top[rows, 0]),
                "mlm_topk": [[self.dictionary[int(t)] for t in row] for row in mlm_top[rows]],
                "sbo_topk": [[self.dictionary[int(t)] for t in row] for row in sbo_top[rows]],
            })
            first += n
        return results

    def _mask_runs(self, tokens):
        """[(start, end)] of each run of mask ids, end exclusive."""
        runs, start = [], None
        for i, is_mask in enumerate(tokens.eq(self.dictionary.mask()).tolist() + [False]):
            if is_mask and start is None:
                start = i
            elif not is_mask and start is not None:
                runs.append((start, i))
                start = None
        return runs

    def _check_length(self, tokens):
        if tokens.size(-1) > self.model.max_positions():
            raise ValueError(
                f"{tokens.size(-1)} tokens exceed the model's {self.model.max_positions()} positions"
            )
