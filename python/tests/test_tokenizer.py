"""The tokenizer API (lorajit_tokenizer_*, issue 12) and text generation on the
real stories260K model.

The model folder is LORAJIT_TEST_TOKENIZER_MODEL, default tests/models/stories260K
(skipped when it is missing). Tests that need the tokenizer calls are skipped,
saying so, only when the loaded liblorajit.so lacks lorajit_tokenizer_open; while
it lacks them, test_missing_tokenizer_api_is_a_clear_error runs instead."""
import json
import os
import shutil

import pytest

import lorajit
from conftest import ROOT

TOK_MODEL = os.environ.get("LORAJIT_TEST_TOKENIZER_MODEL", os.path.join(ROOT, "tests", "models", "stories260K"))
HAS_API = lorajit.has_symbol("lorajit_tokenizer_open")
needs_api = pytest.mark.skipif(not HAS_API, reason="%s has no lorajit_tokenizer_open (the tokenizer API of "
                               "issue 12 is not in this build)" % lorajit.library_path())
needs_model = pytest.mark.skipif(not os.path.isdir(TOK_MODEL),
                                 reason="no tokenizer model at %s (LORAJIT_TEST_TOKENIZER_MODEL)" % TOK_MODEL)


@pytest.mark.skipif(HAS_API, reason="the library has the tokenizer API")
def test_missing_tokenizer_api_is_a_clear_error(tmp_path):
    with pytest.raises(lorajit.MissingSymbolError, match="lorajit_tokenizer_open"):
        lorajit.Tokenizer(str(tmp_path))


@pytest.fixture(scope="module")
def tok():
    t = lorajit.Tokenizer(TOK_MODEL)
    yield t
    t.close()


@needs_api
@needs_model
def test_encode_decode(tok):
    ids = tok.encode("Once upon a time")
    assert tok.bos_token_id == 1 and ids[0] == 1
    assert tok.encode("Once upon a time", add_special_tokens=False) == ids[1:]
    assert tok.decode(ids, skip_special_tokens=True) == "Once upon a time"
    assert tok.decode(ids).endswith("Once upon a time")
    assert tok.eos_token_ids == [2]
    assert tok.vocab_size == 512
    assert tok.token_to_id("<s>") == 1 and tok.token_to_id("no such token at all") is None
    with pytest.raises(lorajit.ArgumentError):
        tok.decode([100000])


@needs_api
@needs_model
def test_stream_decoder_adds_up_to_decode(tok):
    ids = tok.encode("Once upon a time, there was a little girl named Lily. She liked cake!")
    d = tok.stream_decoder(skip_special_tokens=True)
    pieces = [d.push(i) for i in ids] + [d.flush()]
    d.close()
    assert "".join(pieces) == tok.decode(ids, skip_special_tokens=True)


@needs_api
@needs_model
def test_chat_template(tmp_path):
    d = tmp_path / "m"  # a writable copy (the shared model may be read-only)
    d.mkdir()
    for name in os.listdir(TOK_MODEL):
        shutil.copyfile(os.path.join(TOK_MODEL, name), d / name)
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg["chat_template"] = ("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
                            "{% if add_generation_prompt %}[assistant] {% endif %}")
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    with lorajit.Tokenizer(str(d)) as t:
        msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
        assert t.apply_chat_template(msgs) == "[user] Hi\n[assistant] Hello\n"
        text = t.apply_chat_template(msgs[:1], add_generation_prompt=True)
        assert text == "[user] Hi\n[assistant] "
        assert t.apply_chat_template(msgs[:1], add_generation_prompt=True, tokenize=True) == \
            t.encode(text, add_special_tokens=False)
        cfg["chat_template"] = ("{{ tools|length if tools else 'none' }}/{{ enable_thinking }}/{{ bos_token }}/"
                                "{{ messages|length }}")
        (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    with lorajit.Tokenizer(str(d)) as t:
        assert t.apply_chat_template(msgs) == "none//<s>/2"
        assert t.apply_chat_template(msgs, tools=[{"name": "f"}], enable_thinking=False,
                                     bos_token="B") == "1/False/B/2"
        with pytest.raises(lorajit.ArgumentError, match="messages"):
            t.apply_chat_template([{"content": "no role"}])


@needs_api
@needs_model
def test_generate_text_on_stories260K():
    """Greedy from "Once upon a time" gives the model's story (the text Hugging
    Face's tokenizer and PyTorch give), and stream's pieces add up to it."""
    with lorajit.Engine(TOK_MODEL, max_rank=8, max_loras=1) as e:
        text = e.generate("Once upon a time", max_new_tokens=40)
        assert text.startswith(", there was a little girl named Lily"), text
        assert isinstance(e.tokenizer, lorajit.Tokenizer)
        assert "".join(e.stream("Once upon a time", max_new_tokens=40)) == text
        ids = e.tokenizer.encode("Once upon a time")
        new = e.generate(ids, max_new_tokens=40, stop=e.tokenizer.eos_token_ids)  # EOS decodes to ""
        assert e.tokenizer.decode(ids + new, skip_special_tokens=True) == "Once upon a time" + text
