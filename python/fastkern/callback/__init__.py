"""Callbacks for the Learner's training loop, laid out as fastai's ``fastai.callback``:
``core`` (the base class, events and Cancel*Exception), ``schedule`` (ParamScheduler,
LRFinder), ``progress`` (the bar and results table), ``tracker`` (early stopping,
saving the best model, stopping on NaN)."""

from .core import (  # noqa: F401
    EVENTS,
    Callback,
    CancelBackwardException,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelStepException,
    CancelTrainException,
    CancelValidException,
    GatherPreds,
    TrainEvalCallback,
)
from .progress import ProgressCallback  # noqa: F401
from .schedule import (  # noqa: F401
    LRFinder,
    ParamScheduler,
    SuggestedLRs,
    combined_cos,
    sched_cos,
    sched_exp,
    sched_lin,
    suggest_lrs,
)
from .tracker import (  # noqa: F401
    EarlyStoppingCallback,
    SaveModelCallback,
    TerminateOnNaNCallback,
    TrackerCallback,
)
