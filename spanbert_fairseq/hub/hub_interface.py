"""Inference on a trained span_bert model, with RoBERTa's hub methods: encode/decode, features,
fill_mask, and SpanBERT's own span filling with both heads.

Everything is offline: the tokenizer comes from the model's directory (spanbert_text.tokenization).
"""

import re

import torch
from torch import nn

from spanbert_text.errors import UserInputError
from spanbert_text.qa_windows import NO_SPAN, WindowParams, decode_window, encode_question, row_tokens, windows
from spanbert_text.squad import Question

from ..data.head_rows import head_rows
from ..data.span_masking import merged_spans
from ..models.bert_encoder import bert_token_types
from ..tasks.span_qa import window_params as span_qa_window_params

MASK_MARKERS = ("[MASK]", "<mask>")  # either spelling marks one masked token in text
_MASK_SPLIT = re.compile("(" + "|".join(map(re.escape, MASK_MARKERS)) + ")")


class SpanBertHubInterface(nn.Module):
    """A trained SpanBERT with its tokenizer (cf. fairseq's RobertaHubInterface). Starts in eval
    mode; `.train()` turns dropout on and lets `extract_features` carry gradients (fine-tuning)."""

    def __init__(self, cfg, model, dictionary, text_tokenizer):
        super().__init__()
        self.cfg = cfg
        self.model = model
        self.dictionary = dictionary
        self.text_tokenizer = text_tokenizer
        self.register_buffer("_float_tensor", torch.tensor([0], dtype=torch.float))  # tracks the device
        self._starts_word = dictionary.word_start_table()
        self.eval()

    @property
    def device(self):
        return self._float_tensor.device

    def encode(self, sentence, *addl_sentences):
        """text -> 1-D LongTensor `[CLS] a [SEP]`, or `[CLS] a [SEP] b [SEP]` for a pair (BERT's).
        `[MASK]` / `<mask>` in the text become the mask id."""
        ids = [self.dictionary.cls()]
        for text in (sentence, *addl_sentences):
            ids += self._piece_ids(text) + [self.dictionary.sep()]
        return torch.tensor(ids, dtype=torch.long)

    def _piece_ids(self, text):
        ids = []
        for part in _MASK_SPLIT.split(text):
            if part in MASK_MARKERS:
                ids.append(self.dictionary.mask())
            elif part.strip():
                ids += [self.dictionary.index(p) for p in self.text_tokenizer.pieces(part)]
        return ids

    def decode(self, tokens):
        """1-D ids -> text without [CLS]/[PAD]; a pair's sentences come back as a list, as RoBERTa's."""
        tokens = [int(t) for t in tokens if int(t) not in (self.dictionary.cls(), self.dictionary.pad())]
        sentences, current = [], []
        for t in tokens:
            if t == self.dictionary.sep():
                sentences.append(current)
                current = []
            else:
                current.append(t)
        if current or not sentences:
            sentences.append(current)
        texts = [self.text_tokenizer.detokenize([self.dictionary[t] for t in s]) for s in sentences]
        return texts[0] if len(texts) == 1 else texts

    def token_types(self, tokens):
        """B x T BERT segment ids: 0 up to and including the first [SEP], 1 after it (pads 0)."""
        return bert_token_types(tokens, self.dictionary.sep(), self.dictionary.pad())

    def extract_features(self, tokens, return_all_hiddens=False):
        """1-D or B x T ids -> B x T x C last-layer states; with return_all_hiddens, a list of the
        embedding output and every layer's (as RoBERTa's). Gradients flow in train mode only."""
        if tokens.dim() == 1:
            tokens = tokens.unsqueeze(0)
        self._check_length(tokens)
        tokens = tokens.to(self.device)
        with torch.set_grad_enabled(self.training and torch.is_grad_enabled()):
            return self.model.extract_features(tokens, return_all_hiddens, token_types=self.token_types(tokens))

    def register_classification_head(self, name, num_classes=None, inner_dim=None, kind="sentence", **kwargs):
        """RoBERTa's: a new head on the model (docs/DESIGN.md, "Heads"), in the hub's mode."""
        self.model.register_classification_head(name, num_classes, inner_dim, kind=kind, **kwargs)
        self.model.classification_heads[name].to(self.device)

    def predict(self, head, tokens, return_logits=False):
        """1-D or B x T ids -> head `head`'s log-probabilities (RoBERTa's): B x num_classes for a
        sentence head; B x T x 2 for a span head (start and end, each over the positions).
        return_logits: the logits instead."""
        if tokens.dim() == 1:
            tokens = tokens.unsqueeze(0)
        self._check_length(tokens)
        with torch.set_grad_enabled(self.training and torch.is_grad_enabled()):
            logits, _ = self.model(tokens.to(self.device), classification_head_name=head)
        if return_logits:
            return logits
        return logits.log_softmax(dim=-1 if self.model.classification_heads[head].kind == "sentence" else -2)

    @torch.no_grad()
    def fill_mask(self, masked_input, topk=5):
        """Text with one `[MASK]` (or `<mask>`) -> the `topk` fillings as (filled text, probability,
        predicted token), best first; RoBERTa's return shape."""
        count = len(_MASK_SPLIT.findall(masked_input))
        if count != 1:
            raise ValueError(f"fill_mask needs exactly one [MASK] in the input, found {count}: {masked_input!r}")
        tokens = self.encode(masked_input)[None]  # 1 x T
        self._check_length(tokens)
        target = tokens.masked_fill(tokens.ne(self.dictionary.mask()), self.dictionary.pad())
        rows = head_rows(tokens, target, self.dictionary.pad())
        mlm_logits, _ = self.model(tokens.to(self.device), **self._to_device(rows.net_input()))
        probs, ids = mlm_logits[0].float().softmax(-1).topk(topk)
        marker = _MASK_SPLIT.search(masked_input)
        before, after = masked_input[: marker.start()], masked_input[marker.end():]
        filled = []
        for prob, token_id in zip(probs.tolist(), ids.tolist()):
            word = self.text_tokenizer.detokenize([self.dictionary[token_id]])
            # A piece that continues a word joins the text before the mask.
            text = (before if self._starts_word[token_id] else before.rstrip()) + word + after
            filled.append((text, prob, word))
        return filled

    @torch.no_grad()
    def fill_spans(self, masked_text, topk=1):
        """Predict the tokens of every masked span with both heads.

        masked_text: text where each token to predict is written `[MASK]` (or `<mask>`); a run of
        adjacent masks is one span, whose boundaries are the tokens just left and right of it
        ([CLS]/[SEP] for a span at the edge, a context training never gives the SBO head).
        Returns one dict per span: "mlm" and "sbo" (the span filled with each head's best tokens,
        as text), "mlm_score" / "sbo_score" (the probability of that filling: the product over its
        positions), and per position the `topk` best pieces ("mlm_topk" / "sbo_topk") with their
        probabilities ("mlm_probs" / "sbo_probs").
        """
        tokens = self.encode(masked_text)
        starts, ends = merged_spans(tokens.eq(self.dictionary.mask()).numpy())
        spans = list(zip(starts.tolist(), ends.tolist()))
        if not spans:
            raise ValueError(f"no [MASK] in {masked_text!r}")
        self._check_length(tokens[None])
        # One SBO pair per span; its targets are the span's positions 0..len-1.
        lengths = [end - start for start, end in spans]
        longest, limit = max(lengths), self.model.cfg.max_pair_targets
        if longest > limit:
            raise ValueError(f"a span of {longest} masks is longer than max_pair_targets={limit}")
        pad, tokens = self.dictionary.pad(), tokens[None]  # 1 x T
        pairs = torch.tensor([[[start - 1, end] for start, end in spans]])  # 1 x K x 2
        # Only which slots hold a target matters here (any non-pad id marks one).
        pair_targets = torch.tensor([[[self.dictionary.mask() if i < n else pad for i in range(longest)]
                                      for n in lengths]])  # 1 x K x P
        target = tokens.masked_fill(tokens.ne(self.dictionary.mask()), pad)
        rows = head_rows(tokens, target, pad, pairs, pair_targets)
        mlm_logits, sbo_logits = self.model(tokens.to(self.device), **self._to_device(rows.net_input()))
        # Both outputs list the masked tokens left to right, span by span.
        heads = {name: logits.float().softmax(-1).topk(topk) for name, logits in
                 (("mlm", mlm_logits), ("sbo", sbo_logits))}
        results, first = [], 0
        for n in lengths:
            rows = slice(first, first + n)
            result = {}
            for name, (probs, ids) in heads.items():
                probs, ids = probs[rows].cpu(), ids[rows].cpu()
                result[name] = self.text_tokenizer.detokenize([self.dictionary[int(t)] for t in ids[:, 0]])
                result[f"{name}_score"] = float(probs[:, 0].prod())
                result[f"{name}_topk"] = [[self.dictionary[int(t)] for t in row] for row in ids]
                result[f"{name}_probs"] = probs.tolist()
            results.append(result)
            first += n
        return results

    def _to_device(self, inputs):
        return {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in inputs.items()}

    def answer(self, question, context, head="span_qa", no_answer_threshold=None):
        """Extractive QA with a span_qa checkpoint -> (text, score, character start, character end):
        the best span over the context's windows, `context[start:end] == text`, score its start +
        end logit. With `no_answer_threshold` (SQuAD v2.0's best_f1_thresh), ("", null score, 0, 0)
        where the no-answer score (null minus span score) exceeds it."""
        best = self.answer_questions([Question("question", question, context, ())], head)["question"]
        if no_answer_threshold is not None and best.no_answer_score > no_answer_threshold:
            return "", best.null_score, 0, 0
        return best.text, best.score, best.char_start, best.char_end

    @torch.no_grad()
    def answer_questions(self, questions, head="span_qa", batch_size=32):
        """spanbert_text.squad.Question list -> {question id: spanbert_text.qa_windows.Answer}, the
        windowing and decoding flags the checkpoint was fine-tuned with."""
        if head not in self.model.classification_heads:
            raise UserInputError(
                f"the model has no span head {head!r} (heads: {sorted(self.model.classification_heads) or 'none'}); "
                "answer() needs a checkpoint fine-tuned with --task span_qa"
            )
        params = self.window_params()
        rows, contexts = [], {}  # (question, encoded, window, its windows); each paragraph tokenized once
        for question in questions:
            encoded = encode_question(question, self.text_tokenizer, self.dictionary, params, question.qid, contexts)
            all_windows = windows(encoded, params)
            rows += [(question, encoded, w, all_windows) for w in all_windows]
        best = {q.qid: NO_SPAN for q in questions}
        for first in range(0, len(rows), batch_size):
            batch = rows[first:first + batch_size]
            tokens = [torch.from_numpy(row_tokens(e, w, self.dictionary.cls(), self.dictionary.sep()))
                      for _, e, w, _ in batch]
            padded = nn.utils.rnn.pad_sequence(tokens, batch_first=True, padding_value=self.dictionary.pad())
            logits, _ = self.model(padded.to(self.device), features_only=True, classification_head_name=head)
            logits = logits.float().cpu().numpy()  # B x T x 2
            for b, (question, encoded, window, all_windows) in enumerate(batch):
                n = len(tokens[b])
                found = decode_window(logits[b, :n, 0], logits[b, :n, 1], encoded, question.context, window,
                                      all_windows, params)
                best[question.qid] = best[question.qid].merge(found)
        return best

    def window_params(self):
        """The span_qa flags of the checkpoint's task (the defaults for another task's checkpoint)."""
        task = self.cfg.get("task") if hasattr(self.cfg, "get") else None
        if task is None or task.get("_name") != "span_qa":
            return WindowParams()
        return span_qa_window_params(task)

    def _check_length(self, tokens):
        if tokens.size(-1) > self.model.max_positions():
            raise ValueError(
                f"{tokens.size(-1)} tokens exceed the model's {self.model.max_positions()} positions"
            )
