"""The pictures drawn from the metrics log: which metrics feed each one, its caption and how to read it. Pure."""

from __future__ import annotations

from verl_pdai.report.metrics_log import MetricsLog
from verl_pdai.report.plans import Panel, Plan
from verl_pdai.report.series import family, line, validation_metrics

# Per-bucket accuracy the trainer is asked to log (see docs/report.md): pdai/acc_by_difficulty/<lo>-<hi>
ACC_BY_DIFFICULTY_PREFIX = "pdai/acc_by_difficulty/"
VAL_PATTERN = "val-core/<data_source>/acc/mean@<n>"

# (metric, label, dashed) per panel; (ylabel, unit_interval, lines)
_Spec = tuple[str, bool, tuple[tuple[str, str, bool], ...]]


def _panels(log: MetricsLog, specs: tuple[_Spec, ...]) -> tuple[tuple[Panel, ...], tuple[str, ...]]:
    panels, missing = [], []
    for ylabel, unit, entries in specs:
        lines = tuple(line(log, name, label, dashed=dashed) for name, label, dashed in entries)
        missing += [name for name, _, _ in entries if not log.has(name)]
        panels.append(Panel(ylabel, tuple(item for item in lines if item.steps), unit))
    return tuple(panels), tuple(missing)


def _static(log: MetricsLog, file: str, title: str, caption: str, read: str, specs: tuple[_Spec, ...]) -> Plan:
    panels, missing = _panels(log, specs)
    return Plan(file, title, caption, read, panels=panels, missing=missing)


def _family_plan(
    log: MetricsLog, metrics: dict[str, str], wanted: str, *, file: str, title: str, caption: str, read: str
) -> Plan:
    """One line per member of a metric family (label -> metric); ``wanted`` names the family when it is absent."""
    lines = tuple(line(log, name, label) for label, name in metrics.items())
    panels = (Panel("accuracy", lines, True),)
    return Plan(file, title, caption, read, panels=panels, missing=() if lines else (wanted,))


def metric_plans(log: MetricsLog) -> list[Plan]:
    """Every picture of the metrics log, drawable or not (a plan without points is listed as skipped)."""
    return [
        _static(
            log,
            "reward.png",
            "Training reward and accuracy",
            "Top: verl's mean sequence score of the training batch (critic/score/mean: outcome plus step rewards) "
            "and the reward after the KL penalty (critic/rewards/mean). Bottom: accuracy of the main sessions "
            "(pdai/acc_main), of the unhinted and the hinted ones, and of every unassisted session the difficulty "
            "store learns from (pdai/store/batch_success_rate).",
            "Score and accuracy should rise. Hinted accuracy above unhinted accuracy means the hints help; the "
            "unassisted curve is the honest one: it excludes the help.",
            (
                (
                    "score",
                    False,
                    (("critic/score/mean", "score (train)", False), ("critic/rewards/mean", "reward - KL", True)),
                ),
                (
                    "accuracy",
                    True,
                    (
                        ("pdai/acc_main", "main sessions", False),
                        ("pdai/acc_unhinted", "unhinted main", False),
                        ("pdai/acc_hinted", "hinted main", True),
                        ("pdai/store/batch_success_rate", "unassisted (store)", True),
                    ),
                ),
            ),
        ),
        _family_plan(
            log,
            validation_metrics(log),
            VAL_PATTERN,
            file="val_accuracy.png",
            title="Validation accuracy per data source",
            caption="verl's validation metric per data source: val-core/<data_source>/acc/mean@<n> (avg@n, "
            "pass@1 averaged over n samples; reward/mean@<n> where the reward logs no acc). Validation is "
            "never hinted.",
            read="The curve that matters: unassisted accuracy on held-out problems. Points only at the steps "
            "validation ran (trainer.test_freq).",
        ),
        _static(
            log,
            "intervention.png",
            "Intervention rate and hint level",
            "Top: share of main sessions that got a hint (pdai/intervention_rate) and share of response tokens "
            "that are hint tokens (pdai/hint_token_share). Bottom: mean hint level over main sessions "
            "(pdai/hint_level_mean, 0 = no hint) and over hinted ones (pdai/hint_level_mean_hinted).",
            "As the policy improves, fewer problems need help: the intervention rate and the hint level should "
            "fall. A hint token share that stays high means much of the batch is the reference solution, not "
            "the model's own tokens.",
            (
                (
                    "share",
                    True,
                    (
                        ("pdai/intervention_rate", "intervention rate", False),
                        ("pdai/hint_token_share", "hint token share", True),
                    ),
                ),
                (
                    "hint level",
                    False,
                    (
                        ("pdai/hint_level_mean", "mean level (main)", False),
                        ("pdai/hint_level_mean_hinted", "mean level (hinted)", True),
                    ),
                ),
            ),
        ),
        _static(
            log,
            "preview.png",
            "Preview pass rate and previewed difficulty",
            "Share of verified preview sessions that were right (pdai/preview_pass_rate), share of previews that "
            "could not be verified in time (pdai/preview_unverified_rate), and the mean previewed success rate p "
            "the main sessions decided from (pdai/difficulty_mean).",
            "The pass rate rises as the model learns. The previewed p should track it; an unverified rate far "
            "from 0 means the verifier's time limit is too short for the answers.",
            (
                (
                    "rate",
                    True,
                    (
                        ("pdai/preview_pass_rate", "preview pass rate", False),
                        ("pdai/difficulty_mean", "previewed p (decided main)", True),
                        ("pdai/preview_unverified_rate", "unverified previews", True),
                    ),
                ),
            ),
        ),
        _static(
            log,
            "signal_groups.png",
            "Share of groups with signal",
            "Share of groups GRPO can learn from: before the intervention, whose unassisted outcomes differ "
            "(pdai/adv/signal_groups_unassisted); whose outcome scores differ with hinted sessions included "
            "(pdai/adv/signal_groups_outcome); with any non-zero epgrpo advantage, outcome plus process part "
            "(pdai/adv/signal_groups_final).",
            "The gap between the unassisted and the final curve is what the intervention and the step rewards "
            "buy: groups that would have taught nothing under plain GRPO.",
            (
                (
                    "share of groups",
                    True,
                    (
                        ("pdai/adv/signal_groups_unassisted", "unassisted (before)", False),
                        ("pdai/adv/signal_groups_outcome", "outcome", True),
                        ("pdai/adv/signal_groups_final", "final (after)", False),
                    ),
                ),
            ),
        ),
        _family_plan(
            log,
            family(log, ACC_BY_DIFFICULTY_PREFIX),
            ACC_BY_DIFFICULTY_PREFIX + "<lo>-<hi>",
            file="acc_by_difficulty.png",
            title="Accuracy by difficulty bucket (metrics)",
            caption="Unassisted accuracy per difficulty bucket, difficulty = 1 - the store's prior mean p given to "
            "the rollout (pdai/acc_by_difficulty/<lo>-<hi>).",
            read="Hard buckets (high difficulty) should climb over training; a flat hard bucket means the hints "
            "do not transfer to unassisted solving.",
        ),
        _static(
            log,
            "response_length.png",
            "Response length",
            "verl's response length in tokens: mean and max over the batch (response_length/mean, /max), and the "
            "share of responses cut at the length limit (response_length/clip_ratio).",
            "Length usually grows with reasoning; a clip ratio that climbs means the context is too short "
            "(time for the next context stage).",
            (
                (
                    "tokens",
                    False,
                    (
                        ("response_length/mean", "mean", False),
                        ("response_length/max", "max", True),
                    ),
                ),
                ("clip ratio", True, (("response_length/clip_ratio", "clipped", False),)),
            ),
        ),
        _static(
            log,
            "references.png",
            "Reference coverage and hint sources",
            "Top: share of the step's training problems with a usable reference solution (pdai/reference/coverage), "
            "and by source: the data set's own, harvested from the policy's verified unassisted solutions, backfilled "
            "offline, from a corpus (pdai/reference/coverage_<source>). Bottom: share of the step's hints by the "
            "source of their reference (pdai/hint_source/<source>).",
            "A problem without a usable reference is never hinted. Harvested coverage rising means problems the "
            "model sometimes solves gain references, so its failing sessions on them can be helped.",
            (
                (
                    "share of problems",
                    True,
                    (
                        ("pdai/reference/coverage", "any source", False),
                        ("pdai/reference/coverage_dataset", "data set", True),
                        ("pdai/reference/coverage_harvested", "harvested", True),
                        ("pdai/reference/coverage_backfill", "backfill", True),
                        ("pdai/reference/coverage_corpus", "corpus", True),
                    ),
                ),
                (
                    "share of hints",
                    True,
                    (
                        ("pdai/hint_source/dataset", "data set", False),
                        ("pdai/hint_source/harvested", "harvested", False),
                        ("pdai/hint_source/backfill", "backfill", True),
                        ("pdai/hint_source/corpus", "corpus", True),
                    ),
                ),
            ),
        ),
        _static(
            log,
            "store_policy.png",
            "Difficulty store and intervention policy",
            "Top: the store's mean success rate over tracked problems (pdai/store/mean_p) and the shares of "
            "problems with p below 0.1 and above 0.9. Bottom: the fitted hint effect w of the policy "
            "(pdai/policy/w) and its calibration gap, observed minus predicted hinted success "
            "(pdai/policy/calibration_gap).",
            "mean p rises and the hard share shrinks as the model learns. w says how much a full hint raises the "
            "log-odds of success; a calibration gap near 0 means the policy's success model fits.",
            (
                (
                    "share / p",
                    True,
                    (
                        ("pdai/store/mean_p", "mean p", False),
                        ("pdai/store/share_p_below_0.1", "p < 0.1", True),
                        ("pdai/store/share_p_above_0.9", "p > 0.9", True),
                    ),
                ),
                (
                    "policy",
                    False,
                    (
                        ("pdai/policy/w", "w", False),
                        ("pdai/policy/calibration_gap", "calibration gap", True),
                    ),
                ),
            ),
        ),
    ]


SUMMARY_METRICS: tuple[tuple[str, bool], ...] = (
    ("critic/score/mean", True),
    ("pdai/acc_main", True),
    ("pdai/store/batch_success_rate", True),
    ("pdai/intervention_rate", False),
    ("pdai/hint_level_mean", False),
    ("pdai/hint_token_share", False),
    ("pdai/preview_pass_rate", True),
    ("pdai/adv/signal_groups_unassisted", True),
    ("pdai/adv/signal_groups_final", True),
    ("response_length/mean", False),
)


def summary_metrics(log: MetricsLog) -> list[tuple[str, bool]]:
    """(metric, higher is better) for the run summary: the key metrics, validation accuracy first."""
    return [(name, True) for name in validation_metrics(log).values()] + list(SUMMARY_METRICS)
