import pytest

from infercore.models.chat_template import ChatTemplate, ChatTemplateError, render_chat_template
from infercore.models.gguf import GGUFFile

pytest.importorskip("jinja2")  # a runtime dependency of infercore.models.chat_template

MESSAGES = [
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Japan? <b>bold</b> & ünïcode 😀"},
]


@pytest.fixture(scope="module")
def smol_template(smollm2_gguf):
    return GGUFFile(smollm2_gguf).metadata["tokenizer.chat_template"]


def test_smollm2_template_matches_transformers(smol_template):
    ctu = pytest.importorskip("transformers.utils.chat_template_utils")
    t = ChatTemplate(smol_template)
    for msgs in (MESSAGES, [{"role": "system", "content": "Be brief."}, *MESSAGES], MESSAGES[:1]):
        for gen in (True, False):
            ours = t.render(msgs, add_generation_prompt=gen)
            rendered, _ = ctu.render_jinja_template(
                conversations=[msgs], chat_template=smol_template, add_generation_prompt=gen
            )
            assert ours == rendered[0]
    out = t.render(MESSAGES[:1], add_generation_prompt=True)
    assert out.endswith("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n")
    assert out.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")


def test_helpers_and_variables():
    tmpl = (
        "{{ bos_token }}{% for m in messages %}{% if m.role == 'tool' %}{{ raise_exception('no tools here') }}"
        "{% endif %}{{ m.role }}: {{ m.content }}|{% endfor %}{% if add_generation_prompt %}A:{% endif %}"
        "{% if tools %}{{ tools | tojson }}{% endif %}"
    )
    assert render_chat_template(tmpl, MESSAGES[:1], add_generation_prompt=True, bos_token="<s>") == (
        "<s>user: What is the capital of France?|A:"
    )
    assert ChatTemplate(tmpl).render(MESSAGES[:1], tools=[{"name": "f<x>"}]).endswith('[{"name": "f<x>"}]')
    with pytest.raises(ChatTemplateError, match="chat template raised: no tools here"):
        render_chat_template(tmpl, [{"role": "tool", "content": "x"}])
    with pytest.raises(ValueError, match="undefined"):
        ChatTemplate("{{ nothing_here }}", strict=True).render([])
    assert ChatTemplate("{{ nothing_here }}").render([]) == ""


@pytest.mark.parametrize(
    "evil",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ messages.__class__ }}",
        "{{ raise_exception.__globals__ }}",
        "{% set x = messages.append({'role': 'x'}) %}{{ messages }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{% set ns = namespace(a=1) %}{% set ns.__class__ = 1 %}{{ ns }}",
        "{{ range(10**9) | list }}",
        "{{ '{0.__class__.__mro__}'.format(messages) }}",
    ],
)
def test_sandbox_blocks_escapes(evil):
    with pytest.raises(ValueError):
        ChatTemplate(evil).render(MESSAGES[:1])


def test_bad_inputs():
    with pytest.raises(ValueError, match="invalid template"):
        ChatTemplate("{% for x in %}")
    with pytest.raises(TypeError, match="template string"):
        ChatTemplate(None)
    t = ChatTemplate("{{ messages[0].content }}")
    with pytest.raises(TypeError, match="messages"):
        t.render("hello")
    with pytest.raises(ValueError, match=r"messages\[0\]: 'role'"):
        t.render([{"content": "x"}])
    with pytest.raises(TypeError, match=r"messages\[0\]: 'content'"):
        t.render([{"role": "user", "content": 3}])
    with pytest.raises(ValueError, match="rendering failed"):
        ChatTemplate("{{ messages[5].content + 1 }}", strict=True).render(MESSAGES[:1])
    with pytest.raises(ValueError, match="rendering failed"):
        ChatTemplate("{{ 'a' + 1 }}").render(MESSAGES[:1])
