"""Model files with known contents, made with torch for the tests that hand them to Blender.

No bpy here: where Blender's Python has no torch (bpy 5.1+), ``helpers.with_torch`` runs these in the
Python that runs the workers.
"""
import torch
from safetensors.torch import save_file


def rightward_motion_model(path: str):
    """A motion model whose field is +1 px/frame in x everywhere (its last conv is only a bias)."""
    from nn.loop.motion_net import MotionPredictor, save_predictor

    model = MotionPredictor(working_side=64)
    with torch.no_grad():
        model.exit.bias.copy_(torch.tensor([1.0, 0.0]))
    save_predictor(model, path)


def motion_model_holding_nan(path: str):
    from nn.loop.motion_net import MotionPredictor, save_predictor

    model = MotionPredictor(working_side=64)
    with torch.no_grad():
        model.exit.bias[0] = float("nan")
    save_predictor(model, path)


def style_model_holding_inf(path: str):
    from nn.stylize.train import StyleConfig, save_model

    config = StyleConfig(guides=())
    generator = config.generator()
    with torch.no_grad():
        next(generator.parameters()).view(-1)[:2] = float("inf")
    save_model(path, generator, config, steps=1)


def weights_of_another_kind(path: str):
    """A valid safetensors file that no Frameweaver feature made."""
    save_file({"w": torch.zeros(2)}, path, metadata={"kind": "something-else"})
