import os

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))

extensions = [
    Extension(
        "spanbert_fairseq.data.span_masking_fast",
        ["spanbert_fairseq/data/span_masking_fast.pyx"],
        include_dirs=[np.get_include()],
        extra_compile_args=["-O3"],
    )
]
extensions = [e for e in extensions if all(os.path.exists(os.path.join(HERE, s)) for s in e.sources)]

setup(
    name="spanbert_fairseq",
    version="0.1.0",
    description="SpanBERT pretraining (span masking + span boundary objective) as a fairseq plugin",
    python_requires=">=3.10",
    packages=[
        "spanbert_text",
        "spanbert_fairseq",
        "spanbert_fairseq.data",
        "spanbert_fairseq.models",
        "spanbert_fairseq.criterions",
        "spanbert_fairseq.tasks",
        "spanbert_fairseq.hub",
        "spanbert_fairseq.interop",
        "spanbert_fairseq.patches",
        "spanbert_fairseq.evaluation",
        "spanbert_preprocess",
    ],
    package_dir={"spanbert_preprocess": "preprocess"},
    ext_modules=cythonize(extensions, language_level=3) if extensions else [],
    install_requires=[
        "numpy>=1.24",
        "tokenizers>=0.19",
        "sentencepiece>=0.2",
        "safetensors>=0.4",
    ],
    entry_points={
        "console_scripts": [
            "spanbert-preprocess = spanbert_preprocess.cli:main",
            "spanbert-glue = spanbert_preprocess.glue:main",
            "spanbert-import = spanbert_fairseq.interop.import_checkpoint:main",
            "spanbert-export = spanbert_fairseq.interop.export_checkpoint:main",
            "spanbert-eval = spanbert_fairseq.evaluation.cli:main",
        ]
    },
)
