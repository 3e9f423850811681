"""Quickstart: lorajit from Python with PEFT's verbs.

    python3 examples/python_quickstart.py [MODEL_DIR ADAPTER_DIR_1 ADAPTER_DIR_2]

Defaults to the conformance model and two of its PEFT adapters. Needs the
`lorajit` package (pip install ./python) and liblorajit.so (LORAJIT_LIBRARY, or
installed where pkg-config or the loader finds it).
"""
import os
import sys

import lorajit

here = os.path.dirname(os.path.abspath(__file__))
conf = os.path.join(here, "..", "tests", "conformance")
model_dir, sql_dir, chat_dir = sys.argv[1:4] if len(sys.argv) == 4 else (
    os.path.join(conf, "models", "llama-tiny"),
    os.path.join(conf, "adapters", "llama-tiny", "a_qv"),
    os.path.join(conf, "adapters", "llama-tiny", "a_all"))
tokens = [175, 196, 25, 246, 67, 211, 151]

with lorajit.Engine(model_dir, max_rank=16, max_loras=4) as model:    # compiles once
    base = model.forward(tokens)                                       # [7, vocab] float32
    model.load_adapter(sql_dir, adapter_name="sql")                    # PeftModel.load_adapter
    model.load_adapter(chat_dir, adapter_name="chat")
    model.set_adapter("sql")                                           # one adapter
    print("sql:      argmax", int(model.forward(tokens)[-1].argmax()))
    model.set_adapter(["sql", "chat"], weights=[1.0, 0.5])             # a weighted sum
    print("sql+chat: argmax", int(model.forward(tokens)[-1].argmax()), "active", model.active_adapters)
    model.disable_adapters()                                           # the base model, bit for bit
    assert model.forward(tokens).tobytes() == base.tobytes()
    model.enable_adapters()
    model.hotswap_adapter(chat_dir, adapter_name="sql")                # new weights, same name
    model.delete_adapter("chat")
    print("generate:", model.generate(tokens, adapter="sql", max_new_tokens=8))  # ids in, ids out
    batch = model.generate_batch([tokens, tokens[:3]], adapter="sql", max_new_tokens=8)  # one scheduler
    print("batch:", [(r.tokens, r.finish_reason) for r in batch])
    with model.scheduler(start=True) as sched:                         # continuous batching, a driver thread
        req = sched.submit(tokens, adapter="sql", max_new_tokens=8)
        assert list(req) == batch[0].tokens                            # streamed as they are sampled
    print("peft_config:", {k: (v["r"], v["lora_alpha"]) for k, v in model.peft_config.items()})
    st = model.stats
    print("compiles=%d loads=%d hotswaps=%d deletes=%d" % (st["compiles"], st["loads"], st["hotswaps"],
                                                           st["deletes"]))
