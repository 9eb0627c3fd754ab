"""Files both ways: the message-resource download of what a user sent, and the upload of
what the agent sends (images through ``im/v1/images``, other files through
``im/v1/files``), as the content of the message that shows it."""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path

from hotplex_feishu.api import FeishuApi

__all__ = ["download_resource", "upload"]

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".ico", ".tiff", ".tif"}
_FILE_TYPES = {".opus": "opus", ".mp4": "mp4", ".pdf": "pdf", ".doc": "doc", ".docx": "doc",
               ".xls": "xls", ".xlsx": "xls", ".ppt": "ppt", ".pptx": "ppt"}  # fmt: skip


async def upload(api: FeishuApi, path: Path) -> tuple[str, str]:
    """Upload ``path``; the ``msg_type`` and ``content`` of a message that shows it."""
    suffix = path.suffix.lower()
    mime = mimetypes.guess_type(path.name)[0] or ""
    if suffix in _IMAGE_SUFFIXES or mime.startswith("image/"):
        return "image", json.dumps({"image_key": await _upload_image(api, path)})
    key = await _upload_file(api, path, _FILE_TYPES.get(suffix, "stream"))
    return "file", json.dumps({"file_key": key})


async def _upload_image(api: FeishuApi, path: Path) -> str:
    from lark_oapi.api.im.v1 import CreateImageRequest, CreateImageRequestBody

    client = api.client
    with path.open("rb") as image:
        body = CreateImageRequestBody.builder().image_type("message").image(image).build()
        request = CreateImageRequest.builder().request_body(body).build()
        response = await api.call(
            "im.image.create", lambda o: client.im.v1.image.acreate(request, o)
        )
    return str(response.data.image_key)


async def _upload_file(api: FeishuApi, path: Path, file_type: str) -> str:
    from lark_oapi.api.im.v1 import CreateFileRequest, CreateFileRequestBody

    client = api.client
    with path.open("rb") as data:
        body = (
            CreateFileRequestBody.builder()
            .file_type(file_type).file_name(path.name).file(data).build()
        )  # fmt: skip
        request = CreateFileRequest.builder().request_body(body).build()
        response = await api.call("im.file.create", lambda o: client.im.v1.file.acreate(request, o))
    return str(response.data.file_key)


async def download_resource(api: FeishuApi, message_id: str, key: str, kind: str) -> bytes:
    """The bytes of a message's image or file (``kind`` ``image`` or ``file``)."""
    from lark_oapi.api.im.v1 import GetMessageResourceRequest

    request = (
        GetMessageResourceRequest.builder()
        .message_id(message_id).file_key(key).type(kind).build()
    )  # fmt: skip
    client = api.client
    response = await api.call(
        "im.message_resource.get", lambda o: client.im.v1.message_resource.aget(request, o)
    )
    data = response.file.read() if response.file is not None else b""
    return bytes(data)
