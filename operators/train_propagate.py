"""Style tab > Train & Propagate: learn the painted keyframes' look, then stylize the footage."""
import bpy

from . import compat, stylize
from .job_runner import JobModalMixin


class SEQUENCER_OT_frameweaver_train_propagate(JobModalMixin, bpy.types.Operator):
    bl_idname = "sequencer.frameweaver_train_propagate"
    bl_label = "Train & Propagate"
    bl_description = ("Learn the look of the painted keyframes above the footage, then stylize every footage "
                      "frame into one new strip")
    bl_options = {"REGISTER", "UNDO"}

    footage: bpy.props.StringProperty(name="Footage", description="Image-sequence or movie strip (empty: active)")
    mask: bpy.props.StringProperty(name="Mask", description="Optional mask strip: stylize only inside it")
    seconds: bpy.props.FloatProperty(name="Training Time", default=120.0, soft_min=1.0, soft_max=36000.0, unit="TIME_ABSOLUTE",
                                     description="Seconds of training before propagating (Stop ends it sooner)")
    model_file: bpy.props.StringProperty(name="Trained Model", subtype="FILE_PATH",
                                         description="Use this trained model instead of training from scratch")
    resume: bpy.props.BoolProperty(name="Resume Training",
                                   description="Train the model further instead of only applying it")
    fit_sizes: bpy.props.BoolProperty(name="Fit Keyframes", description="Resize keyframes to the footage's size")

    farm: bpy.props.BoolProperty(name="Run on Farm", description="Run the frames as chunks on the Ray cluster set "
                                 "in Preferences > Add-ons > Frameweaver > Farm")

    def prepare(self, context):
        return stylize.prepare(
            compat.sequencer_scene(context), footage=self.footage, mask=self.mask, seconds=self.seconds,
            model_file=bpy.path.abspath(self.model_file) if self.model_file else "", resume=self.resume,
            fit_sizes=self.fit_sizes, farm=self.farm, context=context,
        )
