"""Few-shot style propagation: train a small image-to-image network on painted keyframes, then
stylize every frame of the clip with it (after Texler et al., SIGGRAPH 2020). Never imports bpy.

network.py: generator and patch discriminator; vgg.py: VGG-19 features for the perceptual loss;
guides.py: optical flow and the flow-advected guide channels; train.py: the trainer and model files;
infer.py: batched, tiled inference; task.py: the worker task; __main__.py: the command line.
"""
