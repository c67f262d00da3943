import importlib
import os

# Import every module here so its @register_* decorator runs, as fairseq does for its own.
for _file in sorted(os.listdir(os.path.dirname(__file__))):
    if _file.endswith(".py") and not _file.startswith("_"):
        importlib.import_module(f"{__name__}.{_file[:-3]}")
