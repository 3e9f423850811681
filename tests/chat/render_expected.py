#!/usr/bin/env python3
"""render_expected.py — the reference for tests/test_chat_template.c.

Renders every case with jinja2 set up as transformers' _compile_jinja_template does
(src/transformers/utils/chat_template_utils.py): ImmutableSandboxedEnvironment(
trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]) (AssistantTracker's
{% generation %} renders its body), tojson = json.dumps(ensure_ascii=False, indent,
separators, sort_keys), raise_exception and strftime_now globals.

  python3 tests/chat/render_expected.py          writes cases.json and expected/
  python3 tests/chat/render_expected.py --check  renders again and compares with the
                                                 committed files (exit 1 on a
                                                 difference, 77 without jinja2)
A case is a template (a file under templates/ or inline text) and its variables.
expected/NAME.txt holds the output; expected/NAME.err an error: the exception's class
on the first line, its message on the second (the C side expects LORAJIT_E_ARG, and
the message itself for raise_exception). Contexts avoid floats with integral values
(cJSON cannot tell 1.0 from 1)."""
import json, os, sys
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    import jinja2, jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    if "--check" in sys.argv:
        print("render_expected: python3-jinja2 is not installed; skipped")
        sys.exit(77)
    raise


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.now().strftime(format)

    class Generation(jinja2.ext.Extension):  # transformers' AssistantTracker, minus the tracking
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller):
            return caller()

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


# ---- message lists -------------------------------------------------------------
U = lambda c: {"role": "user", "content": c}
A = lambda c: {"role": "assistant", "content": c}
S = lambda c: {"role": "system", "content": c}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "The city, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}
TIME = {"type": "function", "function": {"name": "get_time", "description": "Current time (UTC+1.5 aware)",
                                         "parameters": {"type": "object", "properties": {}}}}
CALL = {"id": "abc123XYZ", "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}
CALL2 = {"id": "def456UVW", "type": "function", "function": {"name": "get_time", "arguments": "{\"tz\": \"CET\"}"}}
GENERAL = {
    "single": [U("Hello!")],
    "system_multi": [S("You are a helpful assistant."), U("What is 2+2?"), A("2+2 = 4."), U("And 3+3?")],
    "multi": [U("Hi"), A("Hello, how can I help?"), U("Tell me a joke.")],
    "empty": [U("")],
    "unicode": [U("héllo wörld — 你好 🎉🚀 naïve café\u00a0end"), A("Ответ: ✓ ß → SS"), U("日本語で？")],
    "braces": [U("{{ not a var }} {% if x %} {# c #} it's \"quoted\" \\ back\\slash\n\ttabs and\nlines\n")],
    "whitespace": [S("  padded system  \n"), U("\n\n  trailing spaces   \n")],
}


def cases():
    out = []
    T = lambda f: {"template": f}

    def add(name, tpl, ctx):
        out.append({"name": name, **tpl, "context": ctx})

    fam = {"tinyllama": {"bos_token": "<s>", "eos_token": "</s>"},
           "qwen3": {"eos_token": "<|im_end|>"},
           "qwen2.5": {"eos_token": "<|im_end|>"},
           "llama3.1": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
           "mistral-v0.3": {"bos_token": "<s>", "eos_token": "</s>"},
           "gemma": {"bos_token": "<bos>", "eos_token": "<eos>"},
           "phi3-mini": {"bos_token": "<s>", "eos_token": "<|endoftext|>"}}
    for t, toks in fam.items():
        for m, msgs in GENERAL.items():
            for agp in (True, False):
                add(f"{t}__{m}__{'gen' if agp else 'nogen'}", T(f"templates/{t}.jinja"),
                    {**toks, "messages": msgs, "add_generation_prompt": agp})
    q3 = fam["qwen3"]
    tool_turns = [S("You can call tools."), U("Weather in Paris?"),
                  {"role": "assistant", "content": "", "tool_calls": [CALL, CALL2]},
                  {"role": "tool", "content": "{\"temp\": 21.5}"}, {"role": "tool", "content": "10:42"},
                  A("It is 21.5 °C at 10:42."), U("Thanks!")]
    think = [U("What is 17*3?"), A("<think>\n17*3 = 51\n</think>\n\n51."), U("And 17*4?"),
             {"role": "assistant", "content": "68.", "reasoning_content": "17*4 = 68"}, U("Sum?")]
    think_last = [U("Hi"), A("<think>\nGreet back.\n</think>\n\nHello!")]
    for name, ctx in {
        "tools": {"messages": [U("Weather in Paris?")], "tools": [WEATHER, TIME]},
        "tools_system": {"messages": [S("Be brief."), U("Weather in Paris?")], "tools": [WEATHER]},
        "tool_calls": {"messages": tool_turns, "tools": [WEATHER, TIME]},
        "tool_calls_notools": {"messages": tool_turns},
        "thinking": {"messages": think},
        "thinking_last": {"messages": think_last},
        "no_thinking": {"messages": [U("Quick answer: capital of France?")], "enable_thinking": False},
        "tool_response_first": {"messages": [U("<tool_response>x</tool_response>"), A("ok")]},
    }.items():
        for agp in (True, False):
            for t in ("qwen3", "qwen2.5"):
                add(f"{t}__{name}__{'gen' if agp else 'nogen'}", T(f"templates/{t}.jinja"),
                    {**q3, **ctx, "add_generation_prompt": agp})
    l3 = fam["llama3.1"]
    add("llama3.1__tools_user", T("templates/llama3.1.jinja"),
        {**l3, "messages": [S("Sys"), U("Weather in Paris?")], "tools": [WEATHER], "add_generation_prompt": True})
    add("llama3.1__tools_system", T("templates/llama3.1.jinja"),
        {**l3, "messages": [U("Weather?"), {"role": "assistant", "tool_calls": [CALL]},
                            {"role": "tool", "content": {"temp": 21}}, {"role": "ipython", "content": "plain"}],
         "tools": [WEATHER], "tools_in_user_message": False, "date_string": "05 Dec 2026",
         "add_generation_prompt": True})
    add("llama3.1__builtin", T("templates/llama3.1.jinja"),
        {**l3, "messages": [U("Search"), {"role": "assistant", "tool_calls": [
            {"function": {"name": "brave_search", "arguments": {"query": "lorajit"}}}]}],
         "builtin_tools": ["brave_search", "code_interpreter"], "add_generation_prompt": False})
    add("llama3.1__two_calls_error", T("templates/llama3.1.jinja"),
        {**l3, "messages": [U("x"), {"role": "assistant", "tool_calls": [CALL, CALL2]}]})
    add("llama3.1__tools_no_user_error", T("templates/llama3.1.jinja"),
        {**l3, "messages": [S("only system")], "tools": [WEATHER]})
    mi = fam["mistral-v0.3"]
    add("mistral-v0.3__tools", T("templates/mistral-v0.3.jinja"),
        {**mi, "messages": [S("Sys"), U("Weather?"), {"role": "assistant", "tool_calls": [CALL]},
                            {"role": "tool", "content": "21 C", "tool_call_id": "abc123XYZ"}, A(" It is 21 C. "),
                            U("Thanks")], "tools": [WEATHER, TIME]})
    add("mistral-v0.3__alternation_error", T("templates/mistral-v0.3.jinja"), {**mi, "messages": [U("a"), U("b")]})
    add("mistral-v0.3__bad_id_error", T("templates/mistral-v0.3.jinja"),
        {**mi, "messages": [U("a"), {"role": "assistant", "tool_calls": [{"id": "short", "function": {"name": "f", "arguments": {}}}]}]})
    add("mistral-v0.3__role_error", T("templates/mistral-v0.3.jinja"), {**mi, "messages": [U("a"), {"role": "robot", "content": "b"}]})
    add("gemma__system_error", T("templates/gemma.jinja"), {**fam["gemma"], "messages": [S("no"), U("hi")]})
    add("gemma__alternation_error", T("templates/gemma.jinja"), {**fam["gemma"], "messages": [U("a"), U("b")]})
    for i, (tpl, ctx) in enumerate(UNIT):
        add(f"unit_{i:03d}", {"inline": tpl}, ctx)
    return out


# ---- the subset, feature by feature (inline templates) -------------------------
X = {"messages": [U("Hi"), A("Yo"), U("Bye")], "s": "  Hello, World  ", "n": 7, "f": 2.5, "neg": -3,
     "l": [3, 1, 2], "d": {"b": 1, "a": [1, 2], "c": {"x": "y"}}, "e": "", "z": None, "t": True,
     "u8": "héllo ✓ 🎉", "names": [{"name": "a", "ok": True, "n": 2}, {"name": "b", "ok": False, "n": 5}],
     "words": "the quick  brown fox"}
UNIT = [(t, X) for t in [
    # output, literals, str() of values
    "{{ 1 }}|{{ 1.5 }}|{{ 'a' }}|{{ \"b\" }}|{{ true }}|{{ False }}|{{ none }}|{{ None }}",
    "{{ [1, 'a', none, true, 2.5, {'k': 'v'}, (1, 2), (1,), ()] }}",
    "{{ d }}|{{ l }}|{{ z }}|{{ t }}|{{ names }}",
    "{{ \"it's\" }}|{{ ['it\\'s', \"q\\\"\", 'a\\nb', 'tab\\t', '\\\\'] }}",
    "{{ 'a\\tb\\x41\\u00e9\\U0001F600\\q\\101' }}",
    "{{ 1e3 }}|{{ 1.0 }}|{{ 0.1 + 0.2 }}|{{ 1e20 }}|{{ 1e-5 }}|{{ 123456789.125 }}|{{ 1_000 }}|{{ 2.5e-3 }}",
    "{{ 'adjacent' 'strings' }}",
    # arithmetic
    "{{ 7 / 2 }}|{{ 4 / 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ -7 % 3 }}|{{ 7 % -3 }}|{{ 2 ** 10 }}|{{ 2 ** -1 }}|{{ 7.5 // 2 }}|{{ -7.5 % 2 }}",
    "{{ 1 + 2 * 3 - 4 }}|{{ (1 + 2) * 3 }}|{{ -n }}|{{ +n }}|{{ - 2 ** 2 }}|{{ -1|abs }}|{{ n - -1 }}",
    "{{ 'ab' * 3 }}|{{ 3 * 'x' }}|{{ [1] * 2 }}|{{ [1] + [2, 3] }}|{{ 'a' + 'b' }}|{{ true + 1 }}|{{ f * 2 }}|{{ n + f }}",
    "{{ 'a' ~ 1 ~ none ~ undefined_thing ~ [1] ~ true }}",
    # comparisons and logic
    "{{ 1 == 1.0 }}|{{ 1 != 2 }}|{{ 'a' < 'b' }}|{{ [1, 2] < [1, 3] }}|{{ 1 < 2 < 3 }}|{{ 3 > 2 > 2 }}|{{ 2 >= 2 }}|{{ 'b' <= 'a' }}",
    "{{ 'ell' in s }}|{{ 3 in l }}|{{ 'b' in d }}|{{ 'zz' not in s }}|{{ 4 not in l }}|{{ 'x' in undefined_thing }}",
    "{{ 1 and 2 }}|{{ 0 and 2 }}|{{ 0 or 'x' }}|{{ e or z }}|{{ not e }}|{{ not 1 }}|{{ none or false }}",
    "{{ 'yes' if t else 'no' }}|{{ 'yes' if e else 'no' }}|{{ 'only' if e }}|{{ 1 if 0 else 2 if 0 else 3 }}",
    "{{ z == none }}|{{ undefined_thing == undefined_other }}|{{ z == undefined_thing }}|{{ d == {'b': 1, 'a': [1, 2], 'c': {'x': 'y'}} }}",
    # attribute, item, slice
    "{{ d.b }}|{{ d['a'][1] }}|{{ d.a.0 }}|{{ d.c.x }}|{{ d.missing }}|{{ d['missing'] }}|{{ l[-1] }}|{{ l[10] }}|{{ messages[0].content }}",
    "{{ l[::-1] }}|{{ l[1:] }}|{{ l[:-1] }}|{{ l[::2] }}|{{ s[2:7] }}|{{ u8[1:4] }}|{{ u8[::-1] }}|{{ u8[-1] }}|{{ l[5:1:-1] }}|{{ s[-3:] }}",
    "{{ d.missing is defined }}|{{ d.b is defined }}|{{ undefined_thing is defined }}|{{ undefined_thing is undefined }}|{{ d.missing.x is defined if d.missing is defined else 'guarded' }}",
    # for loops
    "{% for x in l %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}:{{ x }};{% endfor %}",
    "{% for x in l %}[{{ loop.previtem }}|{{ loop.nextitem }}]{% endfor %}",
    "{% for x in [] %}a{% else %}empty{% endfor %}|{% for x in l if x > 1 %}{{ x }}{{ loop.length }}{% else %}none{% endfor %}",
    "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k in d %}{{ k }}{% endfor %}|{% for c in 'héy' %}{{ c }}.{% endfor %}",
    "{% for a, b in [[1, 2], (3, 4)] %}{{ a + b }}{% endfor %}|{% for x in undefined_thing %}never{% endfor %}",
    "{% for x in l %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}",
    "{% for i in range(3) %}{% for j in range(i) %}{{ i }}{{ j }}{{ loop.depth }} {% endfor %}{% endfor %}|{{ range(2, 10, 3)|list }}",
    "{% for m in messages[::-1] %}{{ m.role }}{% endfor %}|{% for m in messages|reverse %}{{ loop.index }}{% endfor %}",
    # set, scoping, namespace
    "{% set x = 1 %}{% for i in range(3) %}{% if i == 1 %}{% set x = 5 %}{% endif %}[{{ x }}]{% endfor %}{{ x }}",
    "{% set ns = namespace(a=1, b='x') %}{% for i in range(3) %}{% set ns.a = ns.a + i %}{% endfor %}{{ ns.a }}{{ ns.b }}{{ ns }}",
    "{% set a, b = 1, 2 %}{{ a }}{{ b }}|{% set t2 = 1, 2 %}{{ t2 }}|{% set blk %}in {{ n }} block{% endset %}[{{ blk }}]",
    "{% if t %}{% set y = 'set in if' %}{% endif %}{{ y }}",
    # macros
    "{% macro m(a, b=2, c='c') %}{{ a }}-{{ b }}-{{ c }}{% endmacro %}{{ m(1) }}|{{ m(1, 3) }}|{{ m(1, c='z') }}|{{ m() }}",
    "{% macro fact(k) %}{% if k <= 1 %}1{% else %}{{ k * fact(k - 1)|int }}{% endif %}{% endmacro %}{{ fact(5) }}",
    "{% set g = 'global' %}{% macro show() %}{{ g }}{{ n }}{% endmacro %}{{ show() }}",
    # filters
    "{{ s|trim }}|{{ s|upper }}|{{ s|lower }}|{{ 'hello world-foo(bar)'|title }}|{{ 'hELLO wORLD'|capitalize }}|{{ u8|upper }}|{{ 'ß'|upper }}",
    "{{ s|length }}|{{ u8|length }}|{{ l|count }}|{{ d|length }}|{{ undefined_thing|length }}|{{ l|first }}|{{ l|last }}|{{ 'abc'|first }}|{{ []|first }}",
    "{{ l|join(', ') }}|{{ l|join }}|{{ names|join('/', attribute='name') }}|{{ l|list }}|{{ 'ab'|list }}|{{ d|list }}|{{ l|reverse|list }}|{{ 'abc'|reverse }}",
    "{{ undefined_thing|default('dflt') }}|{{ e|default('dflt') }}|{{ e|default('dflt', true) }}|{{ z|d('x', boolean=true) }}|{{ n|default(0) }}",
    "{{ '42'|int }}|{{ ' 7 '|int }}|{{ '3.9'|int }}|{{ 'x'|int }}|{{ 'x'|int(5) }}|{{ 3.99|int }}|{{ '2.5'|float }}|{{ n|float }}|{{ 'no'|float }}|{{ true|int }}",
    "{{ n|string }}|{{ z|string }}|{{ l|string }}|{{ f|string ~ '!' }}|{{ '<a href=\"x\">&\\'</a>'|e }}|{{ '<b>'|safe }}|{{ z|escape }}",
    "{{ s|replace('l', 'L') }}|{{ s|replace('l', 'L', 2) }}|{{ 'abc'|replace('', '-') }}|{{ names|map(attribute='name')|list }}|{{ l|map('string')|join('+') }}",
    "{{ names|selectattr('ok')|map(attribute='name')|list }}|{{ names|rejectattr('ok')|list }}|{{ names|selectattr('name', 'equalto', 'b')|list }}|{{ messages|selectattr('role', 'eq', 'user')|list|length }}",
    "{{ l|select('odd')|list }}|{{ l|reject('odd')|list }}|{{ [1, none, 0, 'a']|select|list }}|{{ l|select('gt', 1)|list }}|{{ names|map(attribute='missing', default='-')|list }}",
    "{{ d|items|list }}|{{ d.items()|list }}|{{ d.keys()|list }}|{{ d.values()|list }}|{{ d.get('b') }}|{{ d.get('q') }}|{{ d.get('q', 9) }}|{{ undefined_thing|items|list }}",
    "{{ d|tojson }}|{{ l|tojson }}|{{ u8|tojson }}|{{ z|tojson }}|{{ t|tojson }}|{{ f|tojson }}|{{ 'q\"\\\\\\n\\u0001'|tojson }}",
    "{{ d|tojson(indent=2) }}|{{ names|tojson(indent=4) }}|{{ []|tojson(indent=2) }}|{{ {}|tojson(indent=2) }}",
    "{{ d|tojson(separators=(',', ':')) }}|{{ d|tojson(sort_keys=true) }}|{{ u8|tojson(ensure_ascii=true) }}|{{ {1: 2, true: 3, none: 4}|tojson }}",
    # tests
    "{{ s is string }}|{{ n is number }}|{{ f is number }}|{{ t is number }}|{{ n is integer }}|{{ f is float }}|{{ d is mapping }}|{{ l is mapping }}|{{ l is iterable }}|{{ s is iterable }}|{{ n is iterable }}|{{ l is sequence }}",
    "{{ z is none }}|{{ n is none }}|{{ t is boolean }}|{{ n is boolean }}|{{ t is true }}|{{ t is false }}|{{ 1 is true }}|{{ n is odd }}|{{ n is even }}|{{ 9 is divisibleby 3 }}|{{ 9 is divisibleby(2) }}",
    "{{ n is equalto 7 }}|{{ n is eq(7) }}|{{ n is ne 7 }}|{{ 3 is in l }}|{{ 'b' is in d }}|{{ n is not none }}|{{ 'abc' is lower }}|{{ 'ABC' is upper }}|{{ 'aB' is lower }}|{{ z is sameas none }}|{{ d.get is callable }}",
    # string methods
    "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\\n\\nz\\n'.lstrip('\\n') }}|{{ 'abc'.rstrip('cb') }}",
    "{{ s.startswith('  He') }}|{{ s.endswith('d  ') }}|{{ s.startswith(('x', '  ')) }}|{{ 'a,b,,c'.split(',') }}|{{ words.split() }}|{{ words.split(' ', 1) }}|{{ 'a b c'.split(none, 1) }}",
    "{{ s.upper() }}|{{ s.lower() }}|{{ 'hello wORLD 3rd'.title() }}|{{ 'hello'.capitalize() }}|{{ s.replace('o', '0') }}|{{ s.find('o') }}|{{ s.find('q') }}|{{ u8.find('✓') }}|{{ s.rfind('o') }}|{{ s.count('l') }}",
    "{{ '-'.join(['a', 'b']) }}|{{ 'prefix-x'.removeprefix('prefix-') }}|{{ 'x.txt'.removesuffix('.txt') }}|{{ '<think>a</think>b'.split('</think>')[-1] }}|{{ '<think>\\nabc\\n</think>'.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}",
    "{{ s.zzz }}|{{ l.zzz }}|{{ n.zzz }}|{{ z.zzz }}",
    "{{ d.items() }}|{{ d.keys() }}|{{ d.values() }}|{{ d.items()|list }}|{{ d.keys()|length }}|{{ 'b' in d.keys() }}",
    # Markup (|safe, |escape): `+` escapes the plain side, `~` does not
    "{{ '<' + 'a'|safe }}|{{ '<' ~ 'a'|safe }}|{{ ('<'|e)|e }}|{{ ('<'|e) + '>' }}|{{ ('<'|safe)|e }}|{{ ('a'|safe)|upper + '<' }}|{{ ('a'|safe).upper() + '<' }}|{{ 1|safe + '<' }}",
    # whitespace control, trim_blocks, lstrip_blocks, comments
    "a  \n  {% if t %}\n    b\n  {% endif %}\n  c\n",
    "a  {%- if t -%}  b  {%- endif -%}  c|{{- ' x ' -}}|  {{ 'y' }}  {# comment #}  z",
    "line1\n    {# a comment #}\nline2\n  {%+ if t %}kept{% endif %}\n{% if t +%}\nno trim{% endif %}",
    "  {{ 'var at line start' }}\n{% for i in range(2) %}\n  item {{ i }}\n{% endfor %}\ndone\n\n",
    "{% if t %}\r\nwindows\r\n{% endif %}\r\nend\r\n",
    "{#- leading comment -#}\n   text   {#- c #}\n{% generation %}inside gen {{ n }}{% endgeneration %}\n",
    "{% raw_not_really = 1 if false %}" if False else "{{ strftime_now('%Y')|length }}",
    # errors jinja2 raises at render time
    "{{ raise_exception('custom failure: ' ~ n) }}",
    "{{ undefined_thing.attr }}",
    "{{ d.missing.deeper }}",
    "{{ n + 'a' }}",
    "{{ 1 / 0 }}",
    "{{ none|length }}",
    "{% for x in n %}{% endfor %}",
]]


def render_all(env):
    res = {}
    for c in cases():
        if "template" in c:
            src = open(os.path.join(HERE, c["template"]), encoding="utf-8", newline="").read()
        else:
            src = c["inline"]
        try:
            res[c["name"]] = ("txt", env.from_string(src).render(**c["context"]))
        except Exception as e:  # the C side expects an error for the same case
            res[c["name"]] = ("err", f"{type(e).__name__}\n{e}\n")
    return res


def main():
    env = make_env()
    res = render_all(env)
    exp = os.path.join(HERE, "expected")
    cases_json = json.dumps(cases(), ensure_ascii=False, indent=1) + "\n"
    if "--check" in sys.argv:
        bad = 0
        if open(os.path.join(HERE, "cases.json"), encoding="utf-8").read() != cases_json:
            print("render_expected: cases.json is stale (rerun tests/chat/render_expected.py)")
            bad += 1
        for name, (kind, text) in res.items():
            p = os.path.join(exp, f"{name}.{kind}")
            if not os.path.exists(p) or open(p, encoding="utf-8", newline="").read() != text:
                print(f"render_expected: {p} differs from jinja2 {jinja2.__version__}'s output")
                bad += 1
        print(f"render_expected: {len(res)} cases checked against jinja2 {jinja2.__version__}, {bad} stale")
        sys.exit(1 if bad else 0)
    os.makedirs(exp, exist_ok=True)
    for f in os.listdir(exp):
        os.remove(os.path.join(exp, f))
    for name, (kind, text) in res.items():
        with open(os.path.join(exp, f"{name}.{kind}"), "w", encoding="utf-8", newline="") as f:
            f.write(text)
    with open(os.path.join(HERE, "cases.json"), "w", encoding="utf-8") as f:
        f.write(cases_json)
    print(f"render_expected: wrote {len(res)} cases ({sum(k == 'err' for k, _ in res.values())} errors)")


if __name__ == "__main__":
    main()
