"""Fine-tuning a classifier from a pretrained encoder (ULMFiT-style).

`FineTuning` names the encoder (a directory written by `weibo-lstm pretrain`, or the
`pretrained` preset shipped in the package) and how the encoder is trained: a
learning rate `encoder_lr_multiplier` times the head's, and frozen for the first
`frozen_epochs` (gradual unfreezing in two stages: head first, then everything).
The schedule's warmup applies to both.
"""

from __future__ import annotations

import dataclasses
import math
import os

from weibo_lstm.models.encoder import backbone_from_encoder
from weibo_lstm.models.presets import PRETRAINED_ENCODER
from weibo_lstm.training.optimization import EncoderAdam, learning_rate_schedule


@dataclasses.dataclass(frozen=True)
class FineTuning:
    """How to start from a pretrained encoder.

    Attributes:
        encoder: encoder directory (`save_encoder` / `weibo-lstm pretrain`).
        encoder_lr_multiplier: the encoder's learning rate as a fraction of the
            head's (ULMFiT's discriminative fine-tuning, with one factor).
        frozen_epochs: the encoder does not move for this many epochs (the head
            learns on fixed features first).
    """

    encoder: str | os.PathLike = PRETRAINED_ENCODER
    encoder_lr_multiplier: float = 1.0
    frozen_epochs: float = 0.0

    def __post_init__(self):
        if self.encoder_lr_multiplier < 0:
            raise ValueError(
                "Argument `encoder_lr_multiplier` must be >= 0. "
                f"Received: encoder_lr_multiplier={self.encoder_lr_multiplier}"
            )
        if self.frozen_epochs < 0:
            raise ValueError(
                f"Argument `frozen_epochs` must be >= 0. Received: frozen_epochs={self.frozen_epochs}"
            )

    def build(self, *, strategy, options, train_size: int, max_length=None, **head):
        """The classifier (encoder loaded), its tokenizer and its optimizer.

        Args:
            strategy: the trainer's strategy (model and optimizer are created in
                its scope).
            options: the trainer's `TrainerOptions` (batch, epochs, learning rate,
                warmup), from which the schedule is built as the trainer would.
            train_size: number of training examples (for the steps per epoch).
            max_length: the tokenizer's max_length (None: the encoder's).
            **head: `WeiboLSTM` head arguments, and `strip_emoticons`.

        Returns:
            `(model, tokenizer, optimizer)`.
        """
        strip = head.pop("strip_emoticons", None)
        replicas = strategy.num_replicas_in_sync
        steps_per_epoch = max(1, math.ceil(train_size / options.global_batch(replicas)))
        with strategy.scope():
            model, tokenizer = backbone_from_encoder(
                self.encoder, max_length=max_length, strip_emoticons=strip, **head
            )
            encoder_variables = [
                w for layer in model.encoder_layers() for w in layer.trainable_weights
            ]
            optimizer = EncoderAdam(
                learning_rate=learning_rate_schedule(
                    options, num_replicas=replicas, steps_per_epoch=steps_per_epoch
                ),
                encoder_variables=encoder_variables,
                encoder_lr_multiplier=self.encoder_lr_multiplier,
                frozen_steps=round(self.frozen_epochs * steps_per_epoch),
            )
        return model, tokenizer, optimizer
