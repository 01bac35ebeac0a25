"""The OpenAPI 3 description of /v1/, served at /v1/openapi.json.

Written by hand, next to the code it describes (the late original's calls are in
openapi_compat, which serves the whole); tests/test_openapi.py checks it
against the running views with generated requests (schemathesis).
"""

from __future__ import annotations

from .openapi_outlines import outline_paths


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*codes: int) -> dict:
    reasons = {
        400: "The request is malformed; `error` says how.",
        401: "The X-Voter-Token names no voter, or the API token is unknown, revoked or expired.",
        403: "Not allowed (for example, voting on your own donation, or an API token without the scope).",
        404: "Nothing public by that name.",
        405: "Wrong method.",
        409: "Conflict (a duplicate, or a second report).",
        413: "The upload is too large.",
        415: "The body is not sent as JSON.",
        422: "Not an image we accept, or a malformed number.",
        429: "Rate limited; retry after the Retry-After seconds.",
        503: "Temporarily unavailable (rate limiter unreachable, review queue full).",
    }
    return {str(code): _json(ERROR, reasons[code]) for code in codes}


TOKEN = {
    "name": "X-Voter-Token",
    "in": "header",
    "required": False,
    "description": "The token from POST /v1/voter. Without it, the call acts as a fresh anonymous voter.",
    "schema": {"type": "string"},
}
UUID_PATH = {
    "name": "uuid",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}
LABEL_BODY = {
    "type": "object",
    "required": ["label"],
    "properties": {
        # Something besides blanks (labels.lookup.BLANKS).
        "label": {"type": "string", "pattern": "[^ \\t\\n\\r\\f\\v]", "example": "dog"},
        "sublabel": {
            "type": "string",
            "example": "",
            "description": "A part, e.g. eye; empty for the label itself.",
        },
    },
}
TICKET = {
    "type": "string",
    "description": "The ticket of the served task; the vote on it presents it (validation.tickets).",
}
PAIR = {
    "uuid": {"type": "string", "format": "uuid"},
    "label": {"type": "string"},
    "sublabel": {"type": "string"},
    "provider": {"type": "string", "enum": ["donation"]},
}
TASK = {
    "type": "object",
    "required": ["uuid", "label", "sublabel", "provider", "ticket"],
    "properties": {**PAIR, "ticket": TICKET},
}
VOTE_BODY = {
    **LABEL_BODY,
    "properties": {
        **LABEL_BODY["properties"],
        "ticket": {**TICKET, "description": "The `ticket` of the task (or send X-Task-Ticket)."},
    },
}
TICKET_HEADER = {
    "name": "X-Task-Ticket",
    "in": "header",
    "required": False,
    "description": "The task's ticket, when the body does not carry it.",
    "schema": {"type": "string"},
}
VOTED = {
    "type": "object",
    "required": ["uuid", "label", "sublabel", "valid", "replaced", "counted"],
    "properties": {
        **PAIR,
        "valid": {"type": "string", "enum": ["yes", "no"]},
        "replaced": {"type": "boolean", "description": "This voter had answered this pair before."},
        "counted": {
            "type": "boolean",
            "description": "This voter's votes carry weight (they passed training); says nothing of the pair.",
        },
    },
}


RELEASE_ID = {
    "type": "string",
    "pattern": "^[a-z0-9]+([.-][a-z0-9]+)*$",
    "maxLength": 40,
    "example": "2027-01",
}
COUNT = {"type": "integer", "minimum": 0}
SHARE = {"type": "number", "minimum": 0, "maximum": 1, "nullable": True}
ESTIMATE = {
    "type": "object",
    "required": ["gold_pairs", "agreeing", "precision", "interval_95"],
    "properties": {
        "gold_pairs": COUNT,
        "agreeing": COUNT,
        "precision": SHARE,
        "interval_95": {
            "type": "array",
            "nullable": True,
            "items": {"type": "number", "minimum": 0, "maximum": 1},
            "minItems": 2,
            "maxItems": 2,
        },
    },
}
BUCKETED = {
    "type": "object",
    "description": "Pairs by the number of distinct voters (networks) behind their counted votes.",
    "required": ["0", "1", "2", "3", "4", "5+"],
    "properties": dict.fromkeys(["0", "1", "2", "3", "4", "5+"], COUNT),
}
QUALITY = {
    "type": "object",
    "description": "Measured when the release was cut; `method` says from what.",
    "required": ["release", "snapshot", "method", "labels", "calibration"],
    "properties": {
        "release": {"type": "string"},
        "snapshot": {"type": "string", "format": "date-time"},
        "method": {"type": "string"},
        "labels": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "label",
                    "sublabel",
                    "pairs",
                    "settled",
                    "validated",
                    "rejected",
                    "open",
                    "validated_precision",
                    "rejected_precision",
                    "gold_votes",
                    "pairs_by_voters",
                    "pairs_by_networks",
                ],
                "properties": {
                    "label": {"type": "string"},
                    "sublabel": {"type": "string"},
                    "pairs": COUNT,
                    "settled": COUNT,
                    "validated": COUNT,
                    "rejected": COUNT,
                    "open": COUNT,
                    "validated_precision": ESTIMATE,
                    "rejected_precision": ESTIMATE,
                    "gold_votes": {
                        "type": "object",
                        "required": ["answered", "right", "accuracy"],
                        "properties": {"answered": COUNT, "right": COUNT, "accuracy": SHARE},
                    },
                    "pairs_by_voters": BUCKETED,
                    "pairs_by_networks": BUCKETED,
                    "outlines": {
                        **COUNT,
                        "description": "Accepted outlines of the label's positive pairs "
                        "(a release's: frozen at the cut; absent from reports made before).",
                    },
                    "outline_shapes": COUNT,
                },
            },
        },
        "calibration": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["confidence", "gold_pairs", "answer_yes", "share_yes"],
                "properties": {
                    "confidence": {
                        "type": "array",
                        "items": {"type": "number", "minimum": 0, "maximum": 1},
                        "minItems": 2,
                        "maxItems": 2,
                    },
                    "gold_pairs": COUNT,
                    "answer_yes": COUNT,
                    "share_yes": {"type": "number", "minimum": 0, "maximum": 1},
                },
            },
        },
    },
}
RELEASE = {
    "type": "object",
    "required": [
        "id",
        "created",
        "snapshot",
        "query",
        "min_probability",
        "min_confidence",
        "notes",
        "images",
        "pairs",
        "estimated_tar_bytes",
        "previous",
        "changes_since_previous",
        "outlines",
        "outline_changes_since_previous",
        "labels",
        "quality",
    ],
    "properties": {
        "id": RELEASE_ID,
        "created": {"type": "string", "format": "date-time"},
        "snapshot": {
            "type": "string",
            "format": "date-time",
            "description": "When the database was read for this release.",
        },
        "query": {"type": "string"},
        "min_probability": {"type": "number", "minimum": 0, "maximum": 1},
        "min_confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "notes": {"type": "string"},
        "images": COUNT,
        "pairs": COUNT,
        "estimated_tar_bytes": {
            "type": "integer",
            "minimum": 0,
            "description": "The master files' sizes when the release was cut, plus tar headers.",
        },
        "previous": {"type": "string", "nullable": True},
        "changes_since_previous": {
            "type": "object",
            "required": ["added", "removed", "changed"],
            "properties": {"added": COUNT, "removed": COUNT, "changed": COUNT},
        },
        "outlines": {
            **COUNT,
            "description": "Accepted outlines frozen with the pairs when the release was cut.",
        },
        "outline_changes_since_previous": {
            "type": "object",
            "required": ["added", "removed", "changed"],
            "properties": {"added": COUNT, "removed": COUNT, "changed": COUNT},
        },
        "labels": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["label", "sublabel", "pairs"],
                "properties": {
                    "label": {"type": "string"},
                    "sublabel": {"type": "string"},
                    "pairs": COUNT,
                },
            },
        },
        "quality": QUALITY,
    },
}
JSON_LINES = {"application/x-ndjson": {"schema": {"type": "string"}}}
FLAG = {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]}
THRESHOLD = {"type": "number", "minimum": 0, "maximum": 1}


def _query(name: str, schema: dict, description: str, required: bool = False) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


# The parameters of /v1/export and /v1/export/count (exports.views.ExportForm).
EXPORT_PARAMETERS = [
    _query(
        "query",
        {"type": "string", "minLength": 1, "maxLength": 2000},
        "Labels joined with | (or), & (and), ~ (not) and parentheses; a part is dog.has='eye'. "
        "Required, unless `release` is given.",
    ),
    _query(
        "release",
        RELEASE_ID,
        "A release's id: its dataset exactly as it was cut, minus the pictures revoked since "
        "(see /v1/releases). With it, query, the thresholds and annotations_only are refused "
        "(400); an unknown release answers 404.",
    ),
    _query(
        "status",
        {"type": "string", "enum": ["validated", "rejected", "open", "any"]},
        "Which pairs count as labels. Default: validated (settled pairs) — except format=json "
        "without status (and without negatives), which keeps the original ImageMonkey's meaning: "
        "every pair of the matching public images with its counts, filtered by the thresholds "
        "only, as pyimagemonkey expects (it filters by itself).",
    ),
    _query(
        "negatives",
        FLAG,
        "Also the rejected pairs, as verified negatives (status=validated only): a JSON "
        "validation and a CSV row carry status rejected.",
    ),
    _query(
        "min_probability",
        THRESHOLD,
        "Least raw yes share of a pair (a rejected pair's no share, for negatives). One yes "
        "vote gives 1.",
    ),
    _query(
        "min_confidence",
        THRESHOLD,
        "Least weighted posterior of a pair (for negatives, 1 − confidence).",
    ),
    _query("annotations_only", FLAG, "Only annotated images (there are none yet)."),
    _query(
        "layout",
        {"type": "string", "enum": ["single", "multi"]},
        "tar, parquet, hf, webdataset: single (default), only images with exactly one positive "
        "requested label (others in skipped.csv), one folder per label in a tar, a label "
        "column (parquet, hf) or a .cls file (webdataset); multi, every image once with "
        "multi-hot targets (tar: images/ with labels.csv and labels.jsonl).",
    ),
    _query(
        "size",
        {"type": "string", "enum": ["256", "1024", "master"]},
        "tar, parquet, hf, webdataset: the stored rendition of each image (default master).",
    ),
    _query(
        "split",
        {"type": "string", "pattern": "^[0-9]{1,3}/[0-9]{1,3}/[0-9]{1,3}$", "example": "80/10/10"},
        "Train/val/test percentages summing to 100: each image's split comes from a hash of "
        "its uuid (a near-duplicate's: of the image it is similar to) and the seed; a split "
        "field (JSON, COCO), column (CSV) or first folder (tar).",
    ),
    _query(
        "seed",
        {"type": "integer", "minimum": 0, "maximum": 2147483647},
        "The split's seed (default 0).",
    ),
    _query(
        "format",
        {
            "type": "string",
            "enum": [
                "json",
                "jsonl",
                "csv",
                "coco",
                "tar",
                "parquet",
                "hf",
                "webdataset",
                "yolo",
                "voc",
                "labelme",
            ],
        },
        "json (default), jsonl, csv, coco, tar (ImageFolder), parquet (one file with the "
        "image bytes), hf (a Hugging Face datasets folder, as a tar), webdataset (tar "
        "shards, as a tar), or a detection dataset of the accepted outlines: yolo, voc "
        "(Pascal VOC) or labelme.",
    ),
]
EXPORT_ERRORS = {
    "400": _json(
        {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}, "position": {"type": "integer"}},
        },
        "A wrong query (with the 0-based position), an unknown label, a wrong parameter "
        "(named in `error`), or a query too costly to run.",
    ),
    **_errors(404, 422, 429),
}


API_TOKEN = {
    "name": "X-Api-Token",
    "in": "header",
    "required": False,
    "description": "An account's API token (imk_…), as the original's clients send it; "
    "`Authorization: Bearer` carries the same.",
    "schema": {"type": "string"},
}
USERNAME_PATH = {"name": "username", "in": "path", "required": True, "schema": {"type": "string"}}
EMPTY = {"type": "object"}
ISSUED_TOKEN = {
    "type": "object",
    "required": ["token", "scopes", "expires_at"],
    "properties": {
        "token": {"type": "string", "description": "Shown once."},
        "description": {"type": "string"},
        "scopes": {
            "type": "array",
            "items": {"type": "string", "enum": ["annotate", "donate", "read", "vote"]},
        },
        "issued_at": {"type": "integer"},
        "expires_at": {"type": "integer"},
    },
}


COLLECTION = {
    "type": "object",
    "required": ["name", "owner", "images", "query"],
    "properties": {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "owner": {"type": "string"},
        "images": {"type": "integer", "minimum": 0, "description": "Its public pictures."},
        "query": {"type": "string", "description": "The export query term that names it."},
    },
}
COLLECTION_PATH = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}


def _collection_paths(signed: list) -> dict:
    return {
        "/v1/user/{username}/imagecollections": {
            "get": {
                "summary": "An account's image collections",
                "parameters": [USERNAME_PATH],
                "responses": {
                    "200": _json({"type": "array", "items": COLLECTION}, "The list."),
                    **_errors(404),
                },
            }
        },
        "/v1/user/{username}/imagecollection": {
            "post": {
                "summary": "A new image collection of your own (scope annotate)",
                "security": signed,
                "parameters": [USERNAME_PATH, API_TOKEN],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {
                                        "type": "string",
                                        "minLength": 1,
                                        "maxLength": 100,
                                        "pattern": "^[^/]*[^/ ][^/]*$",
                                    },
                                    "description": {"type": "string", "maxLength": 500},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": _json(COLLECTION, "Made."),
                    **_errors(400, 401, 403, 409, 415),
                },
            }
        },
        "/v1/user/{username}/imagecollection/{name}": {
            "get": {
                "summary": "A collection with the uuids of its public pictures",
                "parameters": [USERNAME_PATH, COLLECTION_PATH],
                "responses": {
                    "200": _json(
                        {
                            **COLLECTION,
                            "properties": {
                                **COLLECTION["properties"],
                                "uuids": {
                                    "type": "array",
                                    "items": {"type": "string", "format": "uuid"},
                                },
                            },
                        },
                        "The collection.",
                    ),
                    **_errors(404),
                },
            }
        },
        "/v1/user/{username}/imagecollection/{name}/image/{uuid}": {
            "post": {
                "summary": "Add a public picture to one of your collections (scope annotate)",
                "security": signed,
                "parameters": [USERNAME_PATH, COLLECTION_PATH, UUID_PATH, API_TOKEN],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["added"],
                            "properties": {"added": {"type": "string", "format": "uuid"}},
                        },
                        "Added.",
                    ),
                    **_errors(401, 403, 404),
                },
            }
        },
    }


def _account_paths() -> dict:
    signed = [{"bearerAuth": []}, {"apiToken": []}]
    return {
        **_collection_paths(signed),
        "/v1/login": {
            "post": {
                "summary": "HTTP Basic user name (or e-mail) and password → an API token with "
                "every scope, valid 7 days",
                "security": [{"basicAuth": []}],
                "parameters": [TOKEN],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["token"],
                            "properties": {"token": {"type": "string"}},
                        },
                        "Send the token as Authorization: Bearer.",
                    ),
                    **_errors(401, 403, 429, 503),
                },
            }
        },
        "/v1/logout": {
            "post": {
                "summary": "Revoke the API token this call is made with",
                "security": signed,
                "parameters": [API_TOKEN],
                "responses": {"200": _json(EMPTY, "Revoked."), **_errors(401)},
            }
        },
        "/v1/signup": {
            "post": {
                "summary": "A new account; it logs in once the e-mail address is confirmed",
                "description": "A registered address answers the same 201 (its owner is "
                "told by mail): the answer never says who is registered.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["username", "password", "email"],
                                "properties": {
                                    "username": {"type": "string", "minLength": 1},
                                    "password": {"type": "string", "minLength": 1},
                                    "email": {"type": "string", "minLength": 1},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": _json(
                        {
                            "type": "object",
                            "required": ["status"],
                            "properties": {"status": {"type": "string"}},
                        },
                        "Check your e-mail.",
                    ),
                    **_errors(400, 415, 429, 503),
                },
            }
        },
        "/v1/user/{username}/profile": {
            "get": {
                "summary": "A contributor's public profile (never which answer on what)",
                "parameters": [USERNAME_PATH],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["user_info", "statistics"],
                            "properties": {
                                "user_info": {
                                    "type": "object",
                                    "required": ["name", "created", "is_moderator"],
                                    "properties": {
                                        "name": {"type": "string"},
                                        "created": {"type": "integer"},
                                        "profile_picture": {"type": "string"},
                                        "is_moderator": {"type": "boolean"},
                                    },
                                },
                                "statistics": {
                                    "type": "object",
                                    "required": ["validations", "donations"],
                                    "properties": {
                                        "validations": {"type": "integer", "minimum": 0},
                                        "settled_pairs_helped": {
                                            "type": "integer",
                                            "minimum": 0,
                                            "description": "A day late, in tens.",
                                        },
                                        "donations": {"type": "integer", "minimum": 0},
                                    },
                                },
                            },
                        },
                        "The profile.",
                    ),
                    **_errors(404),
                },
            }
        },
        "/v1/user/{username}/api-token": {
            "post": {
                "summary": "A new API token for your own account (scopes at most the calling "
                "token's)",
                "security": signed,
                "parameters": [USERNAME_PATH, API_TOKEN],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "description": {"type": "string", "maxLength": 200},
                                    "scopes": ISSUED_TOKEN["properties"]["scopes"],
                                    "days": {"type": "integer", "minimum": 1, "maximum": 730},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": _json(ISSUED_TOKEN, "The new token."),
                    **_errors(400, 401, 403, 415),
                },
            }
        },
        "/v1/user/{username}/api-token/{token}/revoke": {
            "post": {
                "summary": "Revoke one of your tokens, named by its secret or its prefix "
                "(imk_1a2b3c4d: keeps the secret out of access logs)",
                "security": signed,
                "parameters": [
                    USERNAME_PATH,
                    {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}},
                    API_TOKEN,
                ],
                "responses": {"200": _json(EMPTY, "Revoked."), **_errors(401, 403, 404)},
            }
        },
    }


def build() -> dict:
    vote_operation = {
        "summary": "Vote on whether the label is in the picture",
        "description": "Needs the ticket of a task served to this voter (403 without).",
        "parameters": [UUID_PATH, TOKEN, TICKET_HEADER],
        "requestBody": {"required": True, "content": {"application/json": {"schema": VOTE_BODY}}},
        "responses": {
            "200": _json(VOTED, "Recorded (or replaced)."),
            **_errors(400, 401, 403, 404, 409, 429, 503),
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "ImageMonkey API",
            "version": "1",
            "description": "The public API of ImageMonkey, compatible with the original ImageMonkey's v1 clients.",
            "license": {
                "name": "Images: CC0 1.0",
                "url": "https://creativecommons.org/publicdomain/zero/1.0/",
            },
        },
        "servers": [{"url": "/"}],
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {"type": "string"},
                        "uuid": {"type": "string", "format": "uuid"},
                    },
                },
            },
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer"},
                "basicAuth": {"type": "http", "scheme": "basic"},
                "apiToken": {"type": "apiKey", "in": "header", "name": "X-Api-Token"},
            },
        },
        "paths": {
            "/v1/label": {
                "get": {
                    "summary": "Active label names, or everything about each with ?detailed=true",
                    "parameters": [
                        {
                            "name": "detailed",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "enum": ["true", "false", "1", "0"]},
                        }
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "oneOf": [
                                    {"type": "array", "items": {"type": "string"}},
                                    {
                                        "type": "object",
                                        "additionalProperties": {
                                            "type": "object",
                                            "required": [
                                                "description",
                                                "categories",
                                                "sublabels",
                                                "synonyms",
                                                "plural",
                                            ],
                                            "properties": {
                                                "description": {"type": "string"},
                                                "plural": {"type": "string"},
                                                "categories": {
                                                    "type": "array",
                                                    "items": {"type": "string"},
                                                },
                                                "isa": {
                                                    "type": "array",
                                                    "items": {"type": "string"},
                                                },
                                                "sublabels": {
                                                    "type": "array",
                                                    "items": {"type": "string"},
                                                },
                                                "has": {"type": "object"},
                                                "synonyms": {
                                                    "type": "array",
                                                    "items": {"type": "string"},
                                                },
                                                "accessors": {
                                                    "type": "array",
                                                    "items": {"type": "string"},
                                                },
                                            },
                                        },
                                    },
                                ]
                            },
                            "Label names, or a map of label name to its details.",
                        ),
                        **_errors(400),
                    },
                }
            },
            "/v1/label/accessors": {
                "get": {
                    "summary": "Every string an export query may use (dog, dog.has='eye')",
                    "responses": {
                        "200": _json({"type": "array", "items": {"type": "string"}}, "Accessors.")
                    },
                }
            },
            "/v1/label/random": {
                "get": {
                    "summary": "A random label",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["label"],
                                "properties": {"label": {"type": "string"}},
                            },
                            "A label.",
                        ),
                        **_errors(404),
                    },
                }
            },
            "/v1/label/popular": {
                "get": {
                    "summary": "The ten labels with the most image–label pairs",
                    "responses": {
                        "200": _json(
                            {"type": "array", "items": {"type": "string"}, "maxItems": 10},
                            "Label names.",
                        )
                    },
                }
            },
            "/v1/voter": {
                "post": {
                    "summary": "A new pseudonymous voter; send its token back as X-Voter-Token",
                    "responses": {
                        "201": _json(
                            {
                                "type": "object",
                                "required": ["token"],
                                "properties": {
                                    "token": {"type": "string"},
                                    "header": {"type": "string"},
                                },
                            },
                            "The token (shown once).",
                        )
                    },
                }
            },
            "/v1/me": {
                "get": {
                    "summary": "The calling voter's numbers",
                    "parameters": [TOKEN],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["votes", "gold_answered", "trusted"],
                                "properties": {
                                    "votes": {
                                        "type": "integer",
                                        "minimum": 0,
                                        "description": "Pairs this voter has answered.",
                                    },
                                    "gold_answered": {"type": "integer", "minimum": 0},
                                    "trusted": {"type": "boolean"},
                                    "agreement": {
                                        "type": "number",
                                        "nullable": True,
                                        "minimum": 0,
                                        "maximum": 1,
                                    },
                                },
                            },
                            "Numbers.",
                        ),
                        **_errors(401),
                    },
                }
            },
            "/v1/validate": {
                "get": {
                    "summary": "The next task for the calling voter, or a grid of one label with ?grouped=true",
                    "parameters": [
                        TOKEN,
                        {
                            "name": "label",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "grouped",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "enum": ["true", "false", "1", "0"]},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                        },
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "oneOf": [
                                    TASK,
                                    {
                                        "type": "object",
                                        "required": ["label", "donations"],
                                        "properties": {
                                            "label": {"type": "string"},
                                            "sublabel": {"type": "string"},
                                            "donations": {
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "required": ["uuid", "provider", "ticket"],
                                                    "properties": {
                                                        "uuid": {
                                                            "type": "string",
                                                            "format": "uuid",
                                                        },
                                                        "provider": {"type": "string"},
                                                        "ticket": TICKET,
                                                        "width": {"type": "integer"},
                                                        "height": {"type": "integer"},
                                                    },
                                                },
                                            },
                                        },
                                    },
                                ]
                            },
                            "A task, or a group of tasks.",
                        ),
                        **_errors(400, 401, 404),
                    },
                }
            },
            "/v1/donation/{uuid}/validate/yes": {
                "post": {**vote_operation, "operationId": "voteYes"}
            },
            "/v1/donation/{uuid}/validate/no": {
                "post": {**vote_operation, "operationId": "voteNo"}
            },
            "/v1/donation/validate": {
                "patch": {
                    "summary": "Several answers on one label, all or nothing",
                    "parameters": [TOKEN],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    **LABEL_BODY,
                                    "required": ["label", "validations"],
                                    "properties": {
                                        **LABEL_BODY["properties"],
                                        "validations": {
                                            "type": "array",
                                            "minItems": 1,
                                            "maxItems": 100,
                                            "items": {
                                                "type": "object",
                                                "required": ["uuid", "valid"],
                                                "properties": {
                                                    "uuid": {"type": "string", "format": "uuid"},
                                                    "ticket": TICKET,
                                                    "valid": {
                                                        "type": "string",
                                                        "enum": ["yes", "no"],
                                                    },
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
                                "required": ["recorded"],
                                "properties": {"recorded": {"type": "integer"}},
                            },
                            "All answers recorded.",
                        ),
                        **_errors(400, 401, 403, 404, 409, 429, 503),
                    },
                }
            },
            "/v1/donation/{uuid}": {
                "get": {
                    "summary": "The bytes of a public picture; width/height pick the smallest stored size that covers them",
                    "parameters": [
                        UUID_PATH,
                        {
                            "name": "width",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 100000},
                        },
                        {
                            "name": "height",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 100000},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "The picture.",
                            "content": {
                                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                                "image/png": {"schema": {"type": "string", "format": "binary"}},
                            },
                        },
                        **_errors(400, 404),
                    },
                }
            },
            "/v1/donate": {
                "post": {
                    "summary": "Donate one picture (dedicated to the public domain, CC0 1.0)",
                    "parameters": [TOKEN],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["image"],
                                    "properties": {
                                        "image": {"type": "string", "format": "binary"},
                                        "label": {
                                            "type": "string",
                                            "description": "Comma-separated labels; unknown words become suggestions.",
                                        },
                                        "add_sublabels": {
                                            "type": "string",
                                            "enum": ["true", "false", "1", "0"],
                                            "description": "Also ask about the labels' parts, "
                                            "once the crowd has validated each label (may "
                                            "also come in the query string).",
                                        },
                                        "image_collection": {
                                            "type": "string",
                                            "minLength": 1,
                                            "maxLength": 100,
                                            "description": "Checked, not stored: image "
                                            "collections need an account.",
                                        },
                                        "dedication": {
                                            "type": "string",
                                            "enum": ["cc0"],
                                            "description": "Every donation is dedicated to the "
                                            "public domain (CC0 1.0); any other value is 400.",
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
                                "required": ["uuid", "dedication", "license"],
                                "properties": {
                                    "uuid": {"type": "string", "format": "uuid"},
                                    "dedication": {"type": "string", "enum": ["cc0"]},
                                    "license": {
                                        "type": "string",
                                        "description": "The dedication, in words.",
                                    },
                                    "image_collection": {
                                        "type": "object",
                                        "required": ["name", "added", "reason"],
                                        "properties": {
                                            "name": {"type": "string"},
                                            "added": {"type": "boolean"},
                                            "reason": {"type": "string"},
                                        },
                                    },
                                },
                            },
                            "Stored, waiting for a moderator; dedicated to the public domain.",
                        ),
                        **_errors(400, 401, 409, 413, 422, 429, 503),
                    },
                }
            },
            "/v1/releases": {
                "get": {
                    "summary": "Every release (a dataset frozen under an id), newest first",
                    "responses": {
                        "200": _json({"type": "array", "items": RELEASE}, "The releases."),
                    },
                }
            },
            "/v1/releases/{id}/changes": {
                "get": {
                    "summary": "The image–label pairs and outlines added, removed or changed since another release",
                    "description": (
                        "JSON lines: {kind: pair, change: added|removed|changed, uuid, label, "
                        "sublabel, before, after}; before and after hold num_yes, num_no, "
                        "probability, confidence and status (null on the side where the pair "
                        "is absent). Then {kind: outline, change, uuid, label, sublabel, "
                        "outline, before, after} per frozen outline, before and after holding "
                        "its revision and number of shapes. Revoked pictures are left out."
                    ),
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": RELEASE_ID},
                        {
                            "name": "since",
                            "in": "query",
                            "required": False,
                            "description": "The release to compare with; default: the previous one (for the first release: nothing, so every pair is added).",
                            "schema": RELEASE_ID,
                        },
                    ],
                    "responses": {
                        "200": {"description": "One JSON object per line.", "content": JSON_LINES},
                        **_errors(400, 404, 429),
                    },
                }
            },
            "/v1/revocations.jsonl": {
                "get": {
                    "summary": "Pictures taken down after they were public: leave them out of every copy",
                    "description": (
                        "JSON lines, oldest first: {uuid, sha256: {master, display, thumb}, "
                        "reason: moderation|reports|withdrawal|copyright, date}. "
                        "Cacheable for five minutes."
                    ),
                    "responses": {
                        "200": {"description": "One JSON object per line.", "content": JSON_LINES},
                    },
                }
            },
            "/v1/export": {
                "get": {
                    "summary": "The dataset, streamed: public images matching a label query",
                    "description": "See /export and /api for the formats, statuses and thresholds.",
                    "parameters": EXPORT_PARAMETERS,
                    "responses": {
                        "200": {
                            "description": "The export, as a download.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "oneOf": [
                                            {"type": "array", "items": {"type": "object"}},
                                            {"type": "object"},
                                        ]
                                    }
                                },
                                "application/x-ndjson": {"schema": {"type": "string"}},
                                "text/csv": {"schema": {"type": "string"}},
                                "application/x-tar": {
                                    "schema": {"type": "string", "format": "binary"}
                                },
                                "application/vnd.apache.parquet": {
                                    "schema": {"type": "string", "format": "binary"}
                                },
                            },
                        },
                        **EXPORT_ERRORS,
                    },
                }
            },
            "/v1/export/count": {
                "get": {
                    "summary": "How many images /v1/export with these parameters holds",
                    "parameters": EXPORT_PARAMETERS,
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["images"],
                                "properties": {"images": {"type": "integer", "minimum": 0}},
                            },
                            "The count.",
                        ),
                        **EXPORT_ERRORS,
                        **_errors(503),
                    },
                }
            },
            "/v1/export/quality": {
                "get": {
                    "summary": "The quality report of /v1/export with these parameters",
                    "description": (
                        "The quality.json every archive carries: per label the settled pairs, "
                        "the precision of validated and rejected pairs estimated from gold "
                        "(95 % Wilson intervals), voters per pair and a calibration table. A "
                        "release's is the one measured when it was cut."
                    ),
                    "parameters": EXPORT_PARAMETERS,
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "labels": {"type": "array", "items": {"type": "object"}},
                                    "calibration": {"type": "array", "items": {"type": "object"}},
                                },
                            },
                            "The report.",
                        ),
                        **EXPORT_ERRORS,
                        **_errors(503),
                    },
                }
            },
            "/v1/report/{uuid}": {
                "post": {
                    "summary": "Report a public picture",
                    "parameters": [UUID_PATH, TOKEN],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["reason"],
                                    "properties": {"reason": {"type": "string", "minLength": 1}},
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["reported"],
                                "properties": {"reported": {"type": "boolean"}},
                            },
                            "Reported.",
                        ),
                        **_errors(400, 401, 404, 409, 429, 503),
                    },
                }
            },
            **_account_paths(),
            **outline_paths(
                json=_json,
                errors=_errors,
                token=TOKEN,
                uuid_path=UUID_PATH,
                ticket_header=TICKET_HEADER,
                label_body=LABEL_BODY,
                ticket=TICKET,
            ),
        },
    }
