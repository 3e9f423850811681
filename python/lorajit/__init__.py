"""lorajit: serve many LoRA fine-tunes of one LLaMA-family model, compiled once.

A thin ctypes binding of liblorajit.so (include/lorajit.h): one method per C
call, PEFT's verbs and argument names, lorajit's messages in the exceptions.

Quickstart::

    import lorajit

    model = lorajit.Engine("models/llama", max_rank=16, target_modules=["q_proj", "v_proj"])
    model.load_adapter("adapters/sql", adapter_name="sql")     # PeftModel.load_adapter
    model.load_adapter("adapters/chat", adapter_name="chat")
    model.set_adapter("sql")                                    # one adapter
    model.set_adapter(["sql", "chat"], weights=[1.0, 0.5])      # a weighted sum
    logits = model.forward([1, 2, 3])                           # numpy [3, vocab]
    model.disable_adapters()                                    # the base model, bit for bit
    model.enable_adapters()
    model.hotswap_adapter("adapters/sql-v2", adapter_name="sql")
    model.delete_adapter("chat")
    print(model.generate("Once upon a time", max_new_tokens=40))
    results = model.generate_batch(["Once upon", "A cat"], adapter="sql")  # one scheduler, shared steps
    with model.scheduler(start=True) as sched:                  # continuous batching
        req = sched.submit("Once upon a time", adapter={"sql": 1.0, "chat": 0.5}, max_new_tokens=40)
        for token in req:                                       # ids as they are sampled
            ...
    model.close()

The library is found through LORAJIT_LIBRARY (a path), then pkg-config's
``lorajit`` libdir, then ``ctypes.util.find_library("lorajit")``.
"""
from .engine import Engine, compiles_total, version
from .errors import (ArgumentError, CompileError, ExistsError, FormatError, FullError, LorajitError,
                     LorajitIOError, LorajitMemoryError, MissingSymbolError, NotFoundError, RequestError,
                     ShapeError, UnsupportedError)
from .scheduler import Request, Result, Scheduler
from .tokenizer import StreamDecoder, Tokenizer
from ._lib import has as has_symbol, library_path

__version__ = "0.1.0"

__all__ = [
    "Engine", "Scheduler", "Request", "Result", "Tokenizer", "StreamDecoder", "version", "compiles_total",
    "has_symbol", "library_path",
    "LorajitError", "LorajitIOError", "FormatError", "ShapeError", "UnsupportedError", "NotFoundError",
    "ExistsError", "FullError", "LorajitMemoryError", "ArgumentError", "CompileError", "MissingSymbolError",
    "RequestError",
]
