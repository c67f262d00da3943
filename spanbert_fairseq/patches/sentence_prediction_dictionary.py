"""fairseq 0.12's `sentence_prediction` task loads input0/dict.txt as a fairseq `Dictionary`.

Defect: `Dictionary.load` prepends <s> <pad> </s> <unk> and the task adds <mask>, so a span_bert
checkpoint's dict.txt (BERT ids: [PAD]=0 ... [CLS]=101, ids = line numbers) comes out with every
id shifted by 4 and five extra entries: the embeddings no longer match the words, and the
vocabulary size check refuses the checkpoint.
Fix: a dict.txt that lists every special by name (`spanbert_text.vocabulary.lists_every_special`:
a BERT-layout vocabulary) loads as the span_bert task loads its own (the plugin's `BertDictionary`,
ids unchanged); any other file (label/dict.txt, RoBERTa's dict.txt) loads as fairseq loads it.
"""

from spanbert_text.vocabulary import lists_every_special

from .wrapping import wrap


def install():
    from fairseq.tasks.sentence_prediction import SentencePredictionTask

    wrap(SentencePredictionTask, "load_dictionary", _bert_layout_first)


def _bert_layout_first(original):
    def load_dictionary(cls, filename):
        if lists_every_special(filename):
            # Through fairseq's registry: a patch may not import the plugin's data or task layers.
            from fairseq.tasks import TASK_REGISTRY

            return TASK_REGISTRY["span_bert"].load_dictionary(filename)
        return original(filename)

    return classmethod(load_dictionary)
