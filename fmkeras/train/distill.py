"""Knowledge distillation (Hinton et al. 2015), after keras-io's `Distiller`.

The student minimises alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(teacher_T || student_T),
where x_T = softmax(logits / T). fmkeras classifiers output probabilities, and
softmax(log(p) / T) == softmax(logits / T) (log p = logits - logsumexp), so the temperature is
applied to log-probabilities. The teacher never trains.

Example:
    distiller = Distiller(student, teacher)
    distiller.compile(optimizer="adam", metrics=["accuracy"], alpha=0.1, temperature=4.0)
    distiller.fit(train_ds, epochs=5)   # then use `student` alone
"""
from __future__ import annotations

import keras
import tensorflow as tf

from fmkeras.train.adversarial import classification_loss

EPS = 1e-7


def soften(probabilities, temperature: float):
    """Softmax at `temperature` of a model's probability output."""
    return tf.nn.softmax(tf.math.log(tf.clip_by_value(probabilities, EPS, 1.0)) / temperature, axis=-1)


def distillation_loss(teacher_probs, student_probs, temperature: float):
    """Per-example T^2 * KL(softened teacher || softened student)."""
    teacher = soften(teacher_probs, temperature)
    student = soften(student_probs, temperature)
    return temperature ** 2 * keras.losses.kl_divergence(teacher, student)


class Distiller(keras.Model):
    """Trains `student` on labels and `teacher`'s softened predictions; calling it runs the student."""

    def __init__(self, student: keras.Model, teacher: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        self.alpha, self.temperature = 0.1, 4.0
        self.built = student.built and teacher.built  # nothing of its own to build

    def compile(self, optimizer="adam", metrics=None, alpha: float = 0.1, temperature: float = 4.0, **kwargs):
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)
        self.alpha, self.temperature = alpha, temperature

    @property
    def output_shape(self):
        return self.student.output_shape

    def call(self, images, training=False):
        return self.student(images, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        teacher_probs = self.teacher(x, training=False)
        hard = classification_loss(y, y_pred)
        soft = distillation_loss(teacher_probs, y_pred, self.temperature)
        loss = tf.reduce_mean(self.alpha * hard + (1.0 - self.alpha) * soft)
        return loss + tf.add_n(self.losses) if self.losses else loss
