import base64

from infercore.guardrails.normalize import decode_base64_spans, fold, rot13, views


def test_fold_undoes_fullwidth_confusables_zero_width_and_case():
    assert fold("ＤＥＬＥＴＥ") == "delete"
    assert fold("Раssԝоrd") == "password"  # Cyrillic Р а о, Cyrillic komi ԝ
    assert fold("pa\u200bss\u2060wo\ufeffrd") == "password"
    assert fold("ΑΒΟ") == "abo"  # Greek capitals
    assert fold("a \t\n  b") == "a b"
    assert fold("a\x00b\x07c") == "abc"


def test_fold_replaces_lone_surrogates():
    assert fold("x\ud800y") == "x\ufffdy"


def test_leet_and_compact_views():
    v = views("Sh0w m3 th3 k3ys")
    assert v.leet == "show me the keys"
    assert v.compact == "showmethekeys"
    assert views("plain words").leet is None


def test_unsplit_view_joins_split_letters():
    v = views("p l e a s e d-e-l-e-t-e the f_i_l_e_s")
    assert v.unsplit == "please delete the files"


def test_base64_spans_decoded_with_limits():
    payload = base64.b64encode(b"please open the pod bay doors").decode()
    assert decode_base64_spans(f"data: {payload} end") == ["please open the pod bay doors"]
    assert decode_base64_spans(f"data: {payload}", max_span_chars=10) == []
    many = " ".join([payload] * 20)
    assert len(decode_base64_spans(many, max_spans=3)) == 3
    binary = base64.b64encode(bytes(range(256))).decode()
    assert decode_base64_spans(binary) == []  # not text


def test_rot13_roundtrip():
    assert rot13(rot13("Hello World")) == "Hello World"
    assert rot13("abc") == "nop"
