"""Marshmallow schemas shared by the resources. Unknown fields are rejected (422)."""
from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE
        ordered = True


class StrictBoolean(fields.Boolean):
    """JSON true or false only: no 1, "yes" or "on" (a flag that changes an answer is not guessed)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is not bool:
            raise self.make_error("invalid")
        return value


class PartSchema(Schema):
    group = fields.String(required=True)
    evidence = fields.String(required=True)
    span = fields.List(fields.Integer(), required=True)


class ClassifierThresholdSchema(Schema):
    report = fields.Float(metadata={"description": "from this probability the classifier reports a hit"})
    review = fields.Float(allow_none=True, metadata={"description": "from this probability the hit forces review"})
    reject = fields.Float(allow_none=True, metadata={"description": "from this probability the hit forces reject "
                                                                    "(null: the classifier never rejects alone)"})
    reject_with_channel = fields.Float(metadata={
        "description": "from this probability the hit forces reject when the message also gives a way to act "
                       "(a link, a phone number, a WeChat id: `channel`)"})
    reject_in_context = fields.Float(metadata={
        "description": "from this probability the hit's reject stands in a message with warning or notice "
                       "context (below it such context demotes it to review)"})
    channel = fields.String(metadata={"description": "the pattern rule that gave the way to act"})
    lang = fields.String(metadata={"description": "the message language whose thresholds applied (en)"})
    units = fields.Integer(metadata={"description": "the message's content units, when too few to reject on"})
    min_content_reject = fields.Integer(metadata={
        "description": "the content units the classifier needs to reject alone (its reject became review)"})
    short_reject = fields.Float(metadata={
        "description": "the probability from which the hit rejects a message under min_content_reject units "
                       "(present when it did)"})
    prohibited = fields.Float(metadata={
        "description": "the aggregate head's probability (any prohibited category), when it decided the hit"})
    prohibited_reject = fields.Float(metadata={
        "description": "from this aggregate probability the most likely prohibited category rejects "
                       "(policy.yaml classifier.prohibited_head)"})
    decision = fields.Float(metadata={
        "description": "the fitted decision's score (the aggregate head weighed with the other signals, "
                       "policy.yaml prohibited_head.fitted): what prohibited_reject and confirm compared, when present"})
    confirm = fields.Float(metadata={
        "description": "the aggregate probability a category head's reject needs (below it, review)"})
    confirm_review = fields.Float(metadata={
        "description": "the score a category head's forced review needs (below it the hit only scores)"})
    min_category = fields.Float(metadata={
        "description": "the probability the most likely category needs for the aggregate head to reject with it"})


class ReasonSchema(Schema):
    rule = fields.String(required=True)
    category = fields.String(allow_none=True, metadata={"description": "taxonomy id; null for patterns, "
                                                                       "template, account and notice-context hits"})
    detector = fields.String()
    score = fields.Float()
    action = fields.String(allow_none=True, metadata={
        "description": "reject (forces reject) | review (forces at least review) | allow (forces allow) | "
                       "context (notice wording: demotes other hits, rules/README.md) | null (score only)"})
    evidence = fields.String(allow_none=True)
    span = fields.List(fields.Integer(), allow_none=True)
    description = fields.String(allow_none=True)
    words = fields.List(fields.String())
    subcategory = fields.String(metadata={"description": "the scenario the rule names, <category>.<name> "
                                                         "(rules/categories.yaml, docs/subcategories.md)"})
    parts = fields.List(fields.Nested(PartSchema), metadata={
        "description": "a composite rule's parts: the term of each group found, with its span"})
    threshold = fields.Nested(ClassifierThresholdSchema, metadata={
        "description": "classifier hits: the thresholds their probability (`score`) was compared against"})


class ScoreContributionSchema(Schema):
    reason = fields.Integer(required=True, metadata={"description": "index in `reasons`"})
    rule = fields.String(required=True)
    category = fields.String(allow_none=True)
    base = fields.Float(metadata={"description": "what the reason weighs on its own: its score, or for a "
                                                 "classifier hit classifier_weight × probability"})
    points = fields.Float(required=True, metadata={
        "description": "what the reason adds to the total after the policy: the points of all reasons add up "
                       "to `score`"})
    formula = fields.String(metadata={"description": "classifier hits: weight × probability"})
    notes = fields.List(fields.String(validate=validate.OneOf(
        ["repeat", "informational", "floor", "context", "offset", "override", "demoted"])), metadata={
        "description": "why `points` differ from `base`, or what else the reason did: repeat (its rule already "
                       "counted: a rule counts once per message), informational (an informational category adds "
                       "nothing), floor (a category's sum is floored at 0: a negative score counts only as far as "
                       "the category's positive scores go), context (notice wording: adds nothing itself), offset "
                       "(a notice context's score offsets each category without a context rule of its own; the "
                       "points are the offset applied), override (score or action set by overrides in "
                       "rules/policy.yaml), demoted (action demoted one step by warning context)"})


class VerdictDecisionSchema(Schema):
    verdict = fields.String(required=True, validate=validate.OneOf(["allow", "review", "reject"]))
    by = fields.String(required=True, validate=validate.OneOf(
        ["rule_reject", "rule_allow", "score_reject", "context_review", "score_review", "rule_review",
         "below_review"]), metadata={
        "description": "rule_reject: a reason whose action is reject forced reject whatever the total; rule_allow: "
                       "a caller's allow-action reason forced allow; score_reject: total >= thresholds.reject; "
                       "context_review: total >= thresholds.reject only with categories under warning context, "
                       "which never reject on their total alone; score_review: total >= thresholds.review; "
                       "rule_review: a reason whose action is review forced review below the review threshold; "
                       "below_review: total < thresholds.review and nothing forced a verdict"})
    reason = fields.Integer(metadata={"description": "rule_*: index in `reasons` of the reason that forced it"})
    rule = fields.String(metadata={"description": "rule_*: the rule that forced it"})
    action = fields.String(allow_none=True)
    threshold = fields.Nested(ClassifierThresholdSchema, metadata={
        "description": "when a classifier hit forced it: the thresholds its probability reached"})
    uncontested = fields.Float(metadata={
        "description": "the part of the total from categories without warning context (when it differs)"})
    score_alone = fields.String(validate=validate.OneOf(["allow", "review", "reject"]), metadata={
        "description": "the verdict the total alone would give (differs when a rule forced the verdict)"})
    text = fields.String(metadata={"description": "the decision in one English sentence"})


class VerdictExplanationSchema(Schema):
    score = fields.Float(required=True, metadata={"description": "the total: the sum of the contributions' points"})
    thresholds = fields.Dict(keys=fields.String(), values=fields.Float(), metadata={
        "description": "the policy's score thresholds compared: {review, reject} (rules/policy.yaml)"})
    classifier_weight = fields.Float(metadata={"description": "a classifier hit adds weight × probability"})
    contributions = fields.List(fields.Nested(ScoreContributionSchema), metadata={
        "description": "one per reason, in the order of `reasons`"})
    decision = fields.Nested(VerdictDecisionSchema, required=True)


class VerdictSchema(Schema):
    verdict = fields.String(required=True, validate=validate.OneOf(["allow", "review", "reject"]))
    categories = fields.List(fields.String())
    score = fields.Float()
    reasons = fields.List(fields.Nested(ReasonSchema))
    forced_by = fields.String(allow_none=True)
    subcategories = fields.List(fields.String(), metadata={
        "description": "scenarios named by the hits that decided the verdict, e.g. fraud.impersonation_authority"})
    ruleset_version = fields.String()
    model_version = fields.String(allow_none=True)
    explanation = fields.Nested(VerdictExplanationSchema, metadata={
        "description": "how the score and the verdict were made: each reason's contribution to the total (they "
                       "add up to `score`), the thresholds compared and what decided the verdict. Verdicts stored "
                       "before it existed have none"})
