"""Adversarial examples (FGSM, PGD) and adversarial training for classifiers on [0, 255] pixels.

epsilon is a fraction of the pixel range: epsilon=0.1 moves every pixel by at most 25.5.
FGSM (Goodfellow et al. 2015): x' = clip(x + epsilon * 255 * sign(grad_x loss)).
PGD (Madry et al. 2018): a random start in the epsilon ball, then `steps` signed-gradient steps
of 2.5 * epsilon / steps, each projected back into the ball and the pixel range.
`AdversarialTraining` trains the wrapped model on every batch plus its adversarial copy
(equal weights, as in Goodfellow et al.); the wrapped model's weights are the ones trained.

Example:
    x_adv = fgsm(model, images, labels, epsilon=0.1)
    trainer_model = AdversarialTraining(model, attack="fgsm", epsilon=0.1)
"""
from __future__ import annotations

import keras
import tensorflow as tf

PIXEL_RANGE = 255.0


def classification_loss(labels, probabilities):
    """Per-example cross entropy for integer labels (N,) or one-hot/soft labels (N, K)."""
    if len(labels.shape) == len(probabilities.shape):
        return keras.losses.categorical_crossentropy(labels, probabilities)
    return keras.losses.sparse_categorical_crossentropy(labels, probabilities)


def _loss_gradient(model, images, labels):
    with tf.GradientTape() as tape:
        tape.watch(images)
        loss = classification_loss(labels, model(images, training=False))
    return tape.gradient(loss, images)


def fgsm(model, images, labels, epsilon: float):
    """One signed-gradient step of size `epsilon` (fraction of 255) that increases the loss."""
    images = tf.convert_to_tensor(images, tf.float32)
    step = epsilon * PIXEL_RANGE * tf.sign(_loss_gradient(model, images, labels))
    return tf.clip_by_value(images + step, 0.0, PIXEL_RANGE)


def pgd(model, images, labels, epsilon: float, steps: int = 5, seed=None):
    """Projected gradient descent (L-infinity) with a random start; `steps` >= 1."""
    images = tf.convert_to_tensor(images, tf.float32)
    radius = epsilon * PIXEL_RANGE
    step_size = 2.5 * radius / steps
    noise = (tf.random.uniform(tf.shape(images), -radius, radius, seed=seed) if seed is None
             else tf.random.stateless_uniform(tf.shape(images), seed, -radius, radius))
    adv = tf.clip_by_value(images + noise, 0.0, PIXEL_RANGE)
    for _ in range(steps):
        adv = adv + step_size * tf.sign(_loss_gradient(model, adv, labels))
        adv = tf.clip_by_value(tf.clip_by_value(adv, images - radius, images + radius), 0.0, PIXEL_RANGE)
    return adv


ATTACKS = {"fgsm": fgsm, "pgd": pgd}


def attack_batch(model, images, labels, attack: str, epsilon: float, steps: int = 5):
    """Adversarial copies of `images` by `attack` (fgsm | pgd)."""
    if attack == "fgsm":
        return fgsm(model, images, labels, epsilon)
    if attack == "pgd":
        return pgd(model, images, labels, epsilon, steps)
    raise ValueError(f"`train.adversarial` must be one of none, fgsm, pgd. Received: {attack!r}")


class AdversarialTraining(keras.Model):
    """Wraps a classifier: each train step fits the clean batch and its adversarial copy together."""

    def __init__(self, model: keras.Model, attack: str = "fgsm", epsilon: float = 0.1, steps: int = 5, **kwargs):
        super().__init__(**kwargs)
        if attack not in ATTACKS:
            raise ValueError(f"`train.adversarial` must be one of none, fgsm, pgd. Received: {attack!r}")
        self.model = model
        self.attack, self.epsilon, self.steps = attack, epsilon, steps
        self.built = model.built  # nothing of its own to build; callbacks such as BackupAndRestore check it

    @property
    def output_shape(self):
        return self.model.output_shape

    def call(self, images, training=False):
        return self.model(images, training=training)

    def train_step(self, data):
        images, labels = data[0], data[1]
        adversarial = tf.stop_gradient(attack_batch(self.model, images, labels, self.attack, self.epsilon,
                                                    self.steps))
        images = tf.concat([tf.cast(images, tf.float32), adversarial], axis=0)
        labels = tf.concat([labels, labels], axis=0)
        with tf.GradientTape() as tape:
            predictions = self.model(images, training=True)
            loss = self.compute_loss(x=images, y=labels, y_pred=predictions, training=True)
        self._loss_tracker.update_state(loss, sample_weight=tf.shape(images)[0])
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return self.compute_metrics(images, labels, predictions)
