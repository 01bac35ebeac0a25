"""The OpenAPI description of the late original API's calls served beside the early ones
(pairs by id, labelme and the label catalogue, statistics, activity), and the whole
description as served at /v1/openapi.json (the early calls are in imagemonkey.openapi)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from people.http import public_read

from .openapi import TICKET, TICKET_HEADER, TOKEN, UUID_PATH, _errors, _json, _query, build

STRING = {"type": "string"}
COUNT = {"type": "integer", "minimum": 0}
IMAGE = {
    "type": "object",
    "required": ["uuid", "provider", "unlocked", "url", "width", "height"],
    "properties": {
        "uuid": {"type": "string", "format": "uuid"},
        "provider": {"type": "string", "enum": ["donation"]},
        "unlocked": {"type": "boolean"},
        "url": STRING,
        "width": COUNT,
        "height": COUNT,
    },
}
LABELLED = {"label": STRING, "sublabel": STRING}
PAIR_ID = {"type": "string", "format": "uuid", "description": "The pair's public id."}
SERVED = {
    "type": "object",
    "required": ["uuid", "image", "label", "sublabel", "ticket"],
    "properties": {"uuid": PAIR_ID, "image": IMAGE, **LABELLED, "ticket": TICKET},
}
DESCRIBED = {
    "type": "object",
    "required": ["uuid", "image", "label", "sublabel", "num_yes", "num_no"],
    "properties": {
        "uuid": PAIR_ID,
        "image": IMAGE,
        **LABELLED,
        "num_yes": COUNT,
        "num_no": COUNT,
    },
}
VOTED = {
    "type": "object",
    "required": ["uuid", "label", "sublabel", "valid", "replaced", "counted"],
    "properties": {
        "uuid": PAIR_ID,
        **LABELLED,
        "valid": {"type": "string", "enum": ["yes", "no"]},
        "replaced": {"type": "boolean"},
        "counted": {"type": "boolean"},
    },
}
PAIR_PATH = {**UUID_PATH, "description": "The pair's public id."}


def _vote(answer: str) -> dict:
    return {
        "post": {
            "operationId": f"validatePair{answer.title()}",
            "summary": f"Answer {answer} on a task you were served (by the pair's id)",
            "description": "Needs the ticket of the task (403 without); every vote counts "
            "against VOTE_RATE.",
            "parameters": [PAIR_PATH, TOKEN, TICKET_HEADER],
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {"type": "object", "properties": {"ticket": TICKET}}
                    }
                },
            },
            "responses": {
                "200": _json(VOTED, "Recorded (or replaced)."),
                **_errors(400, 401, 403, 404, 409, 429, 503),
            },
        }
    }


FLAG = {"type": "string", "enum": ["true", "false", "1", "0"]}
VALIDATION = {
    "type": "object",
    "required": ["uuid", "num_yes", "num_no"],
    "properties": {"uuid": PAIR_ID, "num_yes": COUNT, "num_no": COUNT},
}
LABELME_ENTRY = {
    "type": "object",
    "required": ["label", "unlocked", "annotatable", "sublabels"],
    "properties": {
        "label": STRING,
        "unlocked": {"type": "boolean"},
        "annotatable": {"type": "boolean"},
        "validation": VALIDATION,
        "sublabels": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "unlocked", "annotatable", "validation"],
                "properties": {
                    "name": STRING,
                    "unlocked": {"type": "boolean"},
                    "annotatable": {"type": "boolean"},
                    "validation": VALIDATION,
                },
            },
        },
    },
}
# Any text that normalises to a name is one; the pattern is the plain case.
LABEL_NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 100,
    "pattern": "^[A-Za-z0-9][A-Za-z0-9 ]*$",
}
NAMES = {"type": "array", "items": STRING}


def label_paths() -> dict:
    return {
        "/v1/labelme": {
            "get": {
                "summary": "A public picture that needs labels (as /label chooses), with its "
                "labels as a tree",
                "parameters": [
                    TOKEN,
                    _query("image_id", {"type": "string", "format": "uuid"}, "That picture."),
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["image", "all_labels"],
                            "properties": {
                                "image": {
                                    **IMAGE,
                                    "required": [*IMAGE["required"], "descriptions"],
                                    "properties": {
                                        **IMAGE["properties"],
                                        "descriptions": {"type": "array", "maxItems": 0},
                                    },
                                },
                                "all_labels": {"type": "array", "items": LABELME_ENTRY},
                            },
                        },
                        "The picture and its labels.",
                    ),
                    **_errors(400, 401, 404),
                },
            }
        },
        "/v1/donation/{uuid}/labelme": {
            "post": {
                "summary": "Add labels (and sublabels) to a public picture, or to your own "
                "pending donation: all of them or none",
                "description": "A known label becomes a question for the crowd; an unknown one a "
                "suggestion for curators. `annotatable` is accepted and ignored (no annotations "
                "here). Each label and sublabel counts against VOTE_RATE.",
                "parameters": [UUID_PATH, TOKEN],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": 10,
                                "items": {
                                    "type": "object",
                                    "required": ["label"],
                                    "properties": {
                                        "label": LABEL_NAME,
                                        "annotatable": {"type": "boolean"},
                                        "sublabels": {
                                            "type": "array",
                                            "maxItems": 3,
                                            "items": {
                                                "oneOf": [
                                                    LABEL_NAME,
                                                    {
                                                        "type": "object",
                                                        "required": ["name"],
                                                        "properties": {"name": LABEL_NAME},
                                                    },
                                                ]
                                            },
                                        },
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["added", "already", "suggested"],
                            "properties": {"added": NAMES, "already": NAMES, "suggested": NAMES},
                        },
                        "What became of each label.",
                    ),
                    **_errors(400, 401, 404, 415, 429, 503),
                },
            }
        },
        "/v1/label/accessors": {
            "get": {
                "summary": "Every string an export query may use (dog, dog.has='eye'); "
                "?detailed=true: [{accessor, parent_accessor}]",
                "parameters": [
                    _query("detailed", FLAG, "The original's detailed shape."),
                    _query(
                        "label_type",
                        {
                            "type": "string",
                            "enum": ["", "normal", "refinement", "refinement_category"],
                        },
                        "Ours are all normal: the others list nothing (empty: every label).",
                    ),
                ],
                "responses": {
                    "200": _json(
                        {
                            "anyOf": [
                                NAMES,
                                {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["accessor", "parent_accessor"],
                                        "properties": {
                                            "accessor": STRING,
                                            "parent_accessor": STRING,
                                        },
                                    },
                                },
                            ]
                        },
                        "Accessors.",
                    ),
                    **_errors(400, 422),
                },
            }
        },
        "/v1/label/plurals": {
            "get": {
                "summary": "Each label's plural: {label: plural}",
                "responses": {
                    "200": _json({"type": "object", "additionalProperties": STRING}, "Plurals."),
                    **_errors(400),
                },
            }
        },
        "/v1/label/suggestions": {
            "get": {
                "summary": "The most requested label suggestions (at most 1000): waiting ones, "
                "and accepted ones unless include_unlocked=false; never rejected ones",
                "parameters": [_query("include_unlocked", FLAG, "Also accepted ones (default).")],
                "responses": {"200": _json(NAMES, "Names."), **_errors(400)},
            }
        },
        "/v1/label/suggest": {
            "post": {
                "summary": "Ask curators for a label the taxonomy lacks",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["label"],
                                "properties": {"label": LABEL_NAME},
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["label", "exists"],
                            "properties": {"label": STRING, "exists": {"type": "boolean"}},
                        },
                        "Recorded (or the label exists already).",
                    ),
                    **_errors(400, 415, 429, 503),
                },
            }
        },
    }


NUMBER_ERRORS = _errors(400, 422, 429, 503)


def statistics_paths() -> dict:
    empty = {"type": "array", "maxItems": 0}
    counts = [
        "num_of_unlabeled_donations",
        "num_of_donations",
        "num_of_validations",
        "num_of_annotations",
        "num_of_annotation_refinements",
        "num_of_labels",
        "num_of_label_suggestions",
    ]
    lists = [
        "donations_per_country",
        "validations_per_country",
        "annotations_per_country",
        "annotation_refinements_per_country",
        "image_descriptions_per_country",
        "donations_per_app",
        "validations_per_app",
        "annotations_per_app",
    ]
    return {
        "/v1/statistics/validations/count": {
            "get": {
                "summary": "Per label accessor (dog, dog.has='eye'), its public pairs at or "
                "above min_probability; labels with none have no row",
                "parameters": [
                    _query(
                        "min_probability",
                        {"type": "number", "minimum": 0, "maximum": 1},
                        "Least raw yes share.",
                    ),
                    _query("min_count", {"type": "integer", "minimum": 0}, "Least count."),
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["label", "count"],
                                "properties": {
                                    "label": STRING,
                                    "count": {"type": "integer", "minimum": 1},
                                },
                            },
                        },
                        "Counts, the largest first.",
                    ),
                    **NUMBER_ERRORS,
                },
            }
        },
        "/v1/statistics": {
            "get": {
                "summary": "The explore summary (cached for five minutes); per country and per "
                "app lists are empty (no address is looked up), annotations zero",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["validations", *lists, *counts],
                            "properties": {
                                "validations": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": [
                                            "label",
                                            "count",
                                            "error_rate",
                                            "total_validations",
                                        ],
                                        "properties": {
                                            "label": STRING,
                                            "count": COUNT,
                                            "error_rate": {
                                                "type": "number",
                                                "nullable": True,
                                                "minimum": 0,
                                                "maximum": 1,
                                            },
                                            "total_validations": COUNT,
                                        },
                                    },
                                },
                                **dict.fromkeys(lists, empty),
                                **dict.fromkeys(counts, COUNT),
                            },
                        },
                        "The summary.",
                    ),
                    **_errors(400, 429, 503),
                },
            }
        },
        "/v1/activity": {
            "get": {
                "summary": "Votes and donations per day over the last month (counted, never "
                "listed per vote or voter)",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["activity", "period"],
                            "properties": {
                                "period": {"type": "string", "enum": ["last-month"]},
                                "activity": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["name", "type", "date", "count"],
                                        "properties": {
                                            "name": {
                                                "type": "string",
                                                "enum": ["validation", "donation"],
                                            },
                                            "type": {
                                                "type": "string",
                                                "enum": ["verified", "created"],
                                            },
                                            "date": {"type": "string", "format": "date"},
                                            "count": {"type": "integer", "minimum": 1},
                                        },
                                    },
                                },
                            },
                        },
                        "Activity.",
                    ),
                    **_errors(400, 429, 503),
                },
            }
        },
    }


def paths() -> dict:
    return {
        **label_paths(),
        **statistics_paths(),
        "/v1/validation": {
            "get": {
                "summary": "Your next task, chosen as /v1/validate chooses; ?validation_id= "
                "describes that pair instead (without a ticket)",
                "parameters": [
                    TOKEN,
                    _query("validation_id", {"type": "string", "format": "uuid"}, "A pair's id."),
                ],
                "responses": {
                    "200": _json({"oneOf": [SERVED, DESCRIBED]}, "A task, or the pair named."),
                    **_errors(400, 401, 404),
                },
            }
        },
        "/v1/validation/{uuid}": {
            "get": {
                "summary": "A pair by its id: picture, label and public counts (no ticket)",
                "parameters": [PAIR_PATH],
                "responses": {"200": _json(DESCRIBED, "The pair."), **_errors(400, 404)},
            }
        },
        "/v1/validation/{uuid}/validate/yes": _vote("yes"),
        "/v1/validation/{uuid}/validate/no": _vote("no"),
        "/v1/validation/validate": {
            "patch": {
                "summary": "Several answers by pair id, all or nothing (each a vote)",
                "parameters": [TOKEN],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["validations"],
                                "properties": {
                                    "validations": {
                                        "type": "array",
                                        "minItems": 1,
                                        "maxItems": 100,
                                        "uniqueItems": True,
                                        "items": {
                                            "type": "object",
                                            "required": ["uuid", "valid"],
                                            "properties": {
                                                "uuid": PAIR_ID,
                                                "valid": {"type": "string", "enum": ["yes", "no"]},
                                                "ticket": TICKET,
                                            },
                                        },
                                    }
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "204": {"description": "Every answer recorded (the original's answer)."},
                    **_errors(400, 401, 403, 404, 409, 429, 503),
                },
            }
        },
        "/v1/validations": {
            "get": {
                "summary": "Pairs of the query's labels on the public pictures it matches, "
                "a page at a time",
                "parameters": [
                    _query(
                        "query",
                        {"type": "string", "minLength": 1, "maxLength": 2000},
                        "The export query language; the labels named outside ~ are listed.",
                        required=True,
                    ),
                    _query(
                        "shuffle",
                        {"type": "string", "enum": ["true", "false", "1", "0"]},
                        "A page from a random point instead of the first.",
                    ),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 100},
                        "Page size (50).",
                    ),
                    _query(
                        "after",
                        {"type": "string", "format": "uuid"},
                        "The last uuid of the page before (not with shuffle).",
                    ),
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "array",
                            "maxItems": 100,
                            "items": {
                                "type": "object",
                                "required": ["uuid", "num_of_yes", "num_of_no", "image", "label"],
                                "properties": {
                                    "uuid": PAIR_ID,
                                    "num_of_yes": COUNT,
                                    "num_of_no": COUNT,
                                    "image": IMAGE,
                                    "label": {
                                        "type": "object",
                                        "required": ["name", "sublabel"],
                                        "properties": {"name": STRING, "sublabel": STRING},
                                    },
                                },
                            },
                        },
                        "One page, in uuid order.",
                    ),
                    "400": _json(
                        {
                            "type": "object",
                            "required": ["error"],
                            "properties": {"error": STRING, "position": {"type": "integer"}},
                        },
                        "A wrong query (with its position) or parameter.",
                    ),
                    **_errors(400, 429, 503),
                },
            }
        },
    }


def full() -> dict:
    """The whole description: the early calls (openapi.build) and these."""
    spec = build()
    spec["paths"] = {**spec["paths"], **paths()}
    export = spec["paths"]["/v1/export"]["get"]
    export["parameters"] = [*export["parameters"], TAGS]  # a new list: the count's is shared
    return spec


TAGS = _query(
    "tags",
    {"type": "string", "maxLength": 2000, "example": "dog,cat"},
    "The 2017 form, alone: label names joined by commas (dog,cat means dog | cat); one object "
    "per pair of those labels on public images, {uuid, label, sublabel, provider, "
    "probability, num_yes, num_no, annotations}. Empty: 422.",
)


@public_read
def description(request: HttpRequest) -> JsonResponse:
    return JsonResponse(full())
