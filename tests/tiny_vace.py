"""A tiny, randomly initialised Wan2.1 VACE pipeline of the real diffusers classes, built offline as
diffusers' own tests build theirs (a word-level tokenizer, a small UMT5), for plumbing tests only:
its frames are noise and say nothing of quality.
"""
import hashlib
import os
import shutil

import torch

WORDS = "a an the sky sea wave tree wind cloud water grass moves slowly fast light dark red blue green".split()
MAX_TOKENS = 16  # the tokenizer's model_max_length: longer prompts are cut


def build(folder: str) -> str:
    """Save the tiny pipeline in diffusers' save_pretrained layout (about 0.5 MB) and return ``folder``."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanVACEPipeline, WanVACETransformer3DModel
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    transformer = WanVACETransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=32, freq_dim=256, ffn_dim=32, num_layers=3, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32, vace_layers=[0, 2], vace_in_channels=96)
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(WORDS) + 3, d_model=32, d_kv=8, d_ff=32, num_layers=2,
                                               num_heads=4, relative_attention_num_buckets=8))
    vocabulary = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{word: i + 3 for i, word in enumerate(WORDS)}}
    words = Tokenizer(models.WordLevel(vocabulary, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                        model_max_length=MAX_TOKENS)
    pipe = WanVACEPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
                           scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0))
    pipe.save_pretrained(folder)
    return folder


def as_hub_cache(folder: str, cache_dir: str, repo_id: str, commit: str = "a" * 40) -> str:
    """Lay ``folder`` out as huggingface_hub's cache does: blobs named by their hash (sha256 for LFS
    files, the git blob sha1 for small ones), snapshots/<commit>/ of relative symlinks, refs/main."""
    repo = os.path.join(cache_dir, "models--" + repo_id.replace("/", "--"))
    os.makedirs(os.path.join(repo, "blobs"), exist_ok=True)
    os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
    snapshot = os.path.join(repo, "snapshots", commit)
    for root, _, names in os.walk(folder):
        for name in names:
            source = os.path.join(root, name)
            relative = os.path.relpath(source, folder)
            with open(source, "rb") as f:
                data = f.read()
            lfs = name.endswith(".safetensors")
            blob = hashlib.sha256(data).hexdigest() if lfs else hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            shutil.copyfile(source, os.path.join(repo, "blobs", blob))
            link = os.path.join(snapshot, relative)
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(os.path.relpath(os.path.join(repo, "blobs", blob), os.path.dirname(link)), link)
    with open(os.path.join(repo, "refs", "main"), "w") as f:
        f.write(commit)
    return snapshot
