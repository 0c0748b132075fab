"""DIET loaded for prediction without Rasa's one-batch training step.

Rasa 3.6's `RasaModel.load` compiles the model with Adam and fits it on one example "to build
weights of the correct size", then overwrites every weight with the checkpoint's and runs one
prediction so the prediction function is traced before the first borrower. The training step
traces the whole backward pass and creates the optimizer's slots, and the model keeps both for
its whole life. Measured on the loan model (docs/benchmarks.md, session 11): DIET's load took
237 MB of private memory per Rasa process and 15.8 s; loaded here, 51 MB and 6.6 s.

Here the checkpoint is opened first and the same first prediction builds the model: TensorFlow
restores each variable from the checkpoint the moment the model creates it (deferred
restoration, as `Model.load_weights` documents for subclassed models). That prediction runs
eagerly; the prediction function is traced too only where TensorFlow will predict
(`_first_prediction`). After that prediction,
`assert_existing_objects_matched` proves that every variable the model created was restored
from the checkpoint. If one was not (a model whose prediction makes a variable its checkpoint
lacks), or anything else fails, the model is discarded and Rasa's own load runs. Fine-tuning
(which trains the loaded model) and a load without a prediction example keep Rasa's load.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

_ORIGINAL = "_loanbot_original_load"


def lean_load(cls: Any, model_file_name: str, model_data_example: Any,
              predict_data_example: Any = None, finetune_mode: bool = False,
              *args: Any, **kwargs: Any) -> Any:
    """`RasaModel.load` for prediction: same signature, same model, same weights."""
    original = getattr(cls, _ORIGINAL).__func__
    if finetune_mode or not predict_data_example:  # exactly when Rasa predicts no example
        return original(cls, model_file_name, model_data_example, predict_data_example,
                        finetune_mode, *args, **kwargs)
    try:
        model = cls(*args, **kwargs)
        status = model.load_weights(model_file_name)
        _first_prediction(model, predict_data_example)
        status.assert_existing_objects_matched()
    except Exception:  # noqa: BLE001 - any doubt: Rasa's own load decides, and raises if it must
        logger.warning("%s's weights could not be restored without a training step; "
                       "loading it as Rasa does", cls.__name__, exc_info=True)
        return original(cls, model_file_name, model_data_example, predict_data_example,
                        finetune_mode, *args, **kwargs)
    status.expect_partial()  # the optimizer's slots in the checkpoint are left unread
    return model


def _first_prediction(model: Any, example: Any) -> None:
    """Creates (and so restores) the model's variables, and traces the prediction function as
    Rasa's load does, unless `bot.diet_forward` computes this model's predictions: then the
    prediction runs eagerly only, which creates the same variables without autograph
    converting and tracing the prediction step (≈ 4.5 of a Rasa start's ≈ 6.5 s of model
    load, py-spy). Should a message ever need TensorFlow's path after all, the function is
    traced then, as Rasa traces it on the first prediction after training."""
    eager_before = model._run_eagerly
    model._run_eagerly = True
    try:
        model.run_inference(example)
    finally:
        model._run_eagerly = eager_before
    if not _numpy_predicts(model):
        model.run_inference(example)


def _numpy_predicts(model: Any) -> bool:
    from bot import diet_forward

    return diet_forward.predicts(model)


def install() -> None:
    from rasa.utils.tensorflow.models import RasaModel

    if _ORIGINAL in RasaModel.__dict__:
        return
    setattr(RasaModel, _ORIGINAL, RasaModel.__dict__["load"])
    RasaModel.load = classmethod(lean_load)
