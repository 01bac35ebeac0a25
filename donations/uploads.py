"""Enforce MAX_UPLOAD_MB while the request body streams in."""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, QueryDict
from django.utils.datastructures import MultiValueDict

# The form fields and multipart boundaries around the files.
FORM_FIELDS_ALLOWANCE = 64 * 1024


def upload_limit_bytes() -> int:
    return settings.MAX_UPLOAD_MB * 1024 * 1024


class SizeLimitHandler(FileUploadHandler):
    """Counts the bytes of all files in the request and stops reading past the limit.

    It sits first among the upload handlers: once the limit is passed, the
    rest of the body is not read into memory or onto disk.
    """

    def __init__(self, request: HttpRequest | None = None):
        super().__init__(request)
        self.received = 0

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length and content_length > upload_limit_bytes() + FORM_FIELDS_ALLOWANCE:
            self.request.upload_too_large = True
            return QueryDict(), MultiValueDict()  # parse nothing
        return None

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > upload_limit_bytes():
            self.request.upload_too_large = True
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size):
        return None


def limit_upload_size(request: HttpRequest) -> bool:
    """Install the size limit on this request; False when the declared size is already too big.

    Must run before anything reads request.POST or request.FILES.
    """
    request.upload_too_large = False
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > upload_limit_bytes() + FORM_FIELDS_ALLOWANCE:
        return False
    request.upload_handlers.insert(0, SizeLimitHandler(request))
    return True


def too_large_message() -> str:
    return (
        f"The upload is larger than {settings.MAX_UPLOAD_MB} MB, the most we accept at once. "
        "Please send fewer or smaller pictures."
    )
