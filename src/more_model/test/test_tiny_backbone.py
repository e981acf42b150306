"""The tiny backbone: tokenizer contract, an ordinary HF directory that reloads to the same outputs."""

import torch
from transformers import FuyuForCausalLM

from more_model.config import TinyBackboneConfig
from more_model.fuyu_loader import load_backbone, load_tokenizer
from more_model.tiny_backbone import (
    BOA_TOKEN,
    IMAGE_TOKEN,
    NEWLINE_TOKEN,
    build_tiny_backbone,
    build_tiny_tokenizer,
    save_backbone_dir,
)

CFG = TinyBackboneConfig(hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4)


def test_tokenizer_contract():
    tok = build_tiny_tokenizer()
    vocab = tok.get_vocab()
    assert vocab["<unk>"] == 0 and tok.pad_token_id == 0  # FuyuProcessor pads with id 0
    assert tok.bos_token == "<s>"
    for t in (IMAGE_TOKEN, NEWLINE_TOKEN, "<s>", *(f"<0x0{i}>" for i in range(5)), *(str(b) for b in range(256))):
        assert t in vocab, t
    # |SPEAKER| and |NEWLINE| are plain vocab entries, not added tokens (FuyuProcessor's image token count)
    added = set(tok.get_added_vocab())
    assert IMAGE_TOKEN not in added and NEWLINE_TOKEN not in added
    ids = tok("|SPEAKER||SPEAKER||NEWLINE|go to the red ball?\n" + BOA_TOKEN)["input_ids"]
    toks = tok.convert_ids_to_tokens(ids)
    assert toks[:4] == ["▁", IMAGE_TOKEN, IMAGE_TOKEN, NEWLINE_TOKEN]
    assert toks[-2:] == ["<0x0A>", BOA_TOKEN]
    assert "<unk>" not in toks


def test_tokenizer_is_deterministic_and_handles_any_text():
    a, b = build_tiny_tokenizer(), build_tiny_tokenizer()
    assert a.get_vocab() == b.get_vocab()
    text = "go to the Ünïcode ball 42 🐕"
    ids = a(text)["input_ids"]
    assert 0 not in ids  # byte fallback: nothing becomes <unk>
    assert a.decode(ids) == text


def test_backbone_uses_the_tokenizers_ids_and_fuyu_rope():
    tok = build_tiny_tokenizer()
    model = build_tiny_backbone(CFG, tok, seed=0)
    text = model.config.text_config
    assert model.config.image_token_id == tok.get_vocab()[IMAGE_TOKEN]
    assert text.vocab_size == len(tok)
    assert text.rope_parameters["rope_theta"] == 25000.0 and text.rope_parameters["partial_rotary_factor"] == 0.5
    assert text.hidden_act == "relu2" and text.qk_layernorm
    same = build_tiny_backbone(CFG, tok, seed=0)
    other = build_tiny_backbone(CFG, tok, seed=1)
    w = "model.language_model.layers.0.mlp.dense_h_to_4h.weight"
    assert torch.equal(model.state_dict()[w], same.state_dict()[w])
    assert not torch.equal(model.state_dict()[w], other.state_dict()[w])


def test_saved_directory_reloads_as_an_ordinary_hf_model(tmp_path):
    tok = build_tiny_tokenizer()
    model = build_tiny_backbone(CFG, tok, seed=3)
    save_backbone_dir(tmp_path, model, tok)
    again = FuyuForCausalLM.from_pretrained(tmp_path)  # plain transformers, no code of ours
    ids = torch.tensor([tok("go to the red ball")["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(again(input_ids=ids).logits, model(input_ids=ids).logits, rtol=0, atol=0)
    assert load_tokenizer(tmp_path).get_vocab() == tok.get_vocab()
    loaded, _ = load_backbone(tmp_path, dtype="float32")
    assert not loaded.training
