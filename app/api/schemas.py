"""Marshmallow schemas shared by the resources. Unknown fields are rejected (422)."""
from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE
        ordered = True


class PartSchema(Schema):
    group = fields.String(required=True)
    evidence = fields.String(required=True)
    span = fields.List(fields.Integer(), required=True)


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
