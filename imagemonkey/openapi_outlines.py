"""The outline operations of /v1/ (annotations.api), for imagemonkey.openapi to merge.

The pieces every operation shares (the token and ticket parameters, the label body,
the JSON and error helpers) are openapi's and are handed in, so that this module
imports nothing of it and the description stays one document.
"""

from __future__ import annotations

from collections.abc import Callable

NUMBER = {"type": "number", "minimum": -1e7, "maximum": 1e7}
SIZE = {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 1e7}
ANGLE = {**NUMBER, "description": "Degrees, clockwise, about the shape's top-left corner."}
RECT = {
    "type": "object",
    "required": ["type", "left", "top", "width", "height"],
    "properties": {
        "type": {"type": "string", "enum": ["rect"]},
        "left": NUMBER,
        "top": NUMBER,
        "width": SIZE,
        "height": SIZE,
        "angle": ANGLE,
    },
}
ELLIPSE = {
    "type": "object",
    "required": ["type", "left", "top", "rx", "ry"],
    "properties": {
        "type": {"type": "string", "enum": ["ellipse"]},
        "left": NUMBER,
        "top": NUMBER,
        "rx": SIZE,
        "ry": SIZE,
        "angle": ANGLE,
    },
}
POLYGON = {
    "type": "object",
    "required": ["type", "points"],
    "properties": {
        "type": {"type": "string", "enum": ["polygon"]},
        "points": {
            "type": "array",
            "minItems": 3,
            "maxItems": 500,
            "items": {
                "type": "object",
                "required": ["x", "y"],
                "properties": {"x": NUMBER, "y": NUMBER},
            },
        },
        "angle": ANGLE,
    },
}
SHAPE = {
    "oneOf": [RECT, ELLIPSE, POLYGON],
    "description": "In pixels of the stored master; must lie inside the picture (2 % overhang "
    "is clipped), a polygon must not cross itself.",
}
SHAPES = {"type": "array", "minItems": 1, "maxItems": 100, "items": SHAPE}
UUID = {"type": "string", "format": "uuid"}
# Any text a query may carry: no NUL, which every query string is refused for (400).
TEXT = {"type": "string", "pattern": "^[^\\x00]*$"}


def outline_paths(
    *,
    json: Callable[[dict, str], dict],
    errors: Callable[..., dict],
    token: dict,
    uuid_path: dict,
    ticket_header: dict,
    label_body: dict,
    ticket: dict,
) -> dict:
    """The paths of the outline operations."""
    outline = {
        "type": "object",
        "required": ["annotation_id", "uuid", "label", "sublabel", "annotations", "revision"],
        "properties": {
            "annotation_id": UUID,
            "uuid": {**UUID, "description": "The picture."},
            "label": {"type": "string"},
            "sublabel": {"type": "string"},
            "annotations": {"type": "array", "items": SHAPE},
            "revision": {"type": "integer", "minimum": 1},
            "latest_revision": {"type": "integer", "minimum": 1},
            "num_yes": {"type": "integer", "minimum": 0},
            "num_no": {"type": "integer", "minimum": 0},
            "image": {
                "type": "object",
                "properties": {
                    "uuid": UUID,
                    "width": {"type": "integer"},
                    "height": {"type": "integer"},
                    "url": {"type": "string"},
                },
            },
            "created": {"type": "string", "format": "date-time"},
            "ticket": ticket,
        },
    }
    item = {
        **label_body,
        "required": ["label", "annotations"],
        "properties": {
            **label_body["properties"],
            "annotations": SHAPES,
            "ticket": {
                **ticket,
                "description": "The ticket of the GET /v1/annotate task this outlines: then the "
                "outline may count as evidence for outlines it agrees with.",
            },
        },
    }
    label_params = [
        {
            "name": "label",
            "in": "query",
            "required": False,
            "schema": TEXT,
            "description": "Only this label (dog, or dog/eye for a part).",
        },
        {
            "name": "label_id",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
            "description": "Only the label with this id.",
        },
    ]
    check = {
        "summary": "Check an outline: is it exactly the thing, drawn tightly?",
        "description": "Votes on the outline's latest revision; needs the ticket of the task "
        "GET /v1/annotation served to this voter (403 without).",
        "parameters": [uuid_path, token, ticket_header],
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {"schema": {"type": "object", "properties": {"ticket": ticket}}}
            },
        },
        "responses": {
            "200": json(
                {
                    "type": "object",
                    "required": ["annotation_id", "revision", "valid", "replaced", "counted"],
                    "properties": {
                        "annotation_id": UUID,
                        "revision": {"type": "integer", "minimum": 1},
                        "valid": {"type": "string", "enum": ["yes", "no"]},
                        "replaced": {"type": "boolean"},
                        "counted": {
                            "type": "boolean",
                            "description": "This voter's votes carry weight; says nothing of "
                            "the outline.",
                        },
                    },
                },
                "Recorded (or replaced).",
            ),
            **errors(400, 401, 403, 404, 409, 415, 429, 503),
        },
    }
    return {
        "/v1/annotate": {
            "get": {
                "summary": "A pair the crowd validated, to outline (none accepted yet)",
                "parameters": [
                    token,
                    *label_params,
                    {
                        "name": "validation_id",
                        "in": "query",
                        "required": False,
                        "schema": UUID,
                        "description": "This pair (its uuid, as /v1/validation names it), "
                        "if it may be outlined.",
                    },
                ],
                "responses": {
                    "200": json(
                        {
                            "type": "object",
                            "required": ["uuid", "label", "sublabel", "validation_id", "ticket"],
                            "properties": {
                                "uuid": UUID,
                                "provider": {"type": "string", "enum": ["donation"]},
                                "width": {"type": "integer"},
                                "height": {"type": "integer"},
                                "url": {"type": "string"},
                                "label": {"type": "string"},
                                "sublabel": {"type": "string"},
                                "validation_id": UUID,
                                "ticket": ticket,
                            },
                        },
                        "A task.",
                    ),
                    **errors(400, 401, 404),
                },
            }
        },
        "/v1/donation/{uuid}/annotate": {
            "post": {
                "summary": "Outline things in a public picture: one outline per label",
                "description": "All or nothing. 201 with a Location header naming the first "
                "outline. A bad shape is refused with 400 naming it (`shape 2: …`).",
                "parameters": [uuid_path, token],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {"type": "array", "minItems": 1, "maxItems": 20, "items": item},
                                    item,
                                ]
                            }
                        }
                    },
                },
                "responses": {
                    "201": {
                        **json(
                            {
                                "type": "object",
                                "required": ["annotations"],
                                "properties": {"annotations": {"type": "array", "items": outline}},
                            },
                            "Stored.",
                        ),
                        "headers": {
                            "Location": {
                                "schema": {"type": "string"},
                                "description": "/v1/annotation?annotation_id=<uuid>",
                            }
                        },
                    },
                    **errors(400, 401, 403, 404, 409, 415, 429, 503),
                },
            }
        },
        "/v1/annotation": {
            "get": {
                "summary": "An outline (?annotation_id, ?rev), or without an id one to check",
                "parameters": [
                    token,
                    {
                        "name": "annotation_id",
                        "in": "query",
                        "required": False,
                        "schema": TEXT,
                    },
                    {
                        "name": "rev",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "pattern": "^[0-9]{1,9}$"},
                        "description": "A revision number (default: the latest).",
                    },
                    *label_params,
                ],
                "responses": {
                    "200": json(outline, "The outline; a task to check carries a ticket."),
                    **errors(400, 401, 404),
                },
            }
        },
        "/v1/annotation/{uuid}": {
            "put": {
                "summary": "Edit an outline: a new revision, whose votes start afresh",
                "description": "Its author or a moderator only (403 for anyone else).",
                "parameters": [uuid_path, token],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["annotations"],
                                "properties": {"annotations": SHAPES},
                            }
                        }
                    },
                },
                "responses": {
                    "200": json(outline, "The new revision."),
                    **errors(400, 401, 403, 404, 409, 415, 429, 503),
                },
            }
        },
        "/v1/annotation/{uuid}/validate/yes": {"post": {**check, "operationId": "outlineYes"}},
        "/v1/annotation/{uuid}/validate/no": {"post": {**check, "operationId": "outlineNo"}},
        "/v1/validation/{pair_uuid}/not-annotatable": {
            "post": {
                "summary": "Say a validated pair cannot be outlined",
                "description": "Once NOT_ANNOTATABLE_TO_CLOSE trusted voters, each served the "
                "pair by GET /v1/annotate (send its ticket), say so, it is no longer offered.",
                "parameters": [
                    {
                        "name": "pair_uuid",
                        "in": "path",
                        "required": True,
                        "schema": UUID,
                    },
                    token,
                    ticket_header,
                ],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "properties": {"ticket": ticket}}
                        }
                    },
                },
                "responses": {
                    "200": json(
                        {
                            "type": "object",
                            "required": ["validation_id", "not_annotatable"],
                            "properties": {
                                "validation_id": UUID,
                                "not_annotatable": {"type": "boolean"},
                            },
                        },
                        "Recorded.",
                    ),
                    **errors(400, 401, 404, 415, 429, 503),
                },
            }
        },
        "/v1/annotations": {
            "get": {
                "summary": "The newest outlines of a query's labels (at most 200)",
                "parameters": [
                    {
                        "name": "query",
                        "in": "query",
                        "required": True,
                        "schema": {**TEXT, "minLength": 1, "maxLength": 2000},
                        "description": "An export query (dog | cat); outlines of its labels on "
                        "the public pictures it matches.",
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                    },
                ],
                "responses": {
                    "200": json(
                        {
                            "type": "object",
                            "required": ["query", "annotations"],
                            "properties": {
                                "query": {"type": "string"},
                                "annotations": {"type": "array", "items": outline},
                            },
                        },
                        "Outlines, newest first.",
                    ),
                    **errors(400, 429, 503),
                },
            }
        },
    }
