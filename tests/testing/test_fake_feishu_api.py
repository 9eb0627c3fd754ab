"""The fake's tenant token and im.v1 API, driven by the real lark-oapi client."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from fake_feishu_kit import forget_token, lark_client
from lark_oapi.api.im.v1 import (
    CreateFileRequest,
    CreateFileRequestBody,
    CreateImageRequest,
    CreateImageRequestBody,
    CreateMessageRequest,
    CreateMessageRequestBody,
    GetMessageResourceRequest,
    PatchMessageRequest,
    PatchMessageRequestBody,
    ReplyMessageRequest,
    ReplyMessageRequestBody,
    UpdateMessageRequest,
    UpdateMessageRequestBody,
)
from lark_oapi.core.exception import ObtainAccessTokenException

from hotplex.testing.feishu import FakeFeishu, Limits, ManualClock

TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"


@pytest.fixture
async def fs() -> AsyncIterator[FakeFeishu]:
    async with FakeFeishu(clock=ManualClock()) as fake:
        fake.add_chat("oc_g", "group", members=["ou_alice", "ou_bob"], name="team")
        yield fake


def card(text: str = "hi", **config: Any) -> str:
    return json.dumps(
        {
            "schema": "2.0",
            "config": config,
            "body": {"elements": [{"tag": "markdown", "content": text}]},
        }
    )


async def send(
    client: Any, chat_id: str, msg_type: str, content: str, uuid: str | None = None
) -> Any:
    body = (
        CreateMessageRequestBody.builder().receive_id(chat_id).msg_type(msg_type).content(content)
    )
    if uuid:
        body = body.uuid(uuid)
    request = CreateMessageRequest.builder().receive_id_type("chat_id").request_body(body.build())
    return await client.im.v1.message.acreate(request.build())


async def patch(client: Any, message_id: str, content: str) -> Any:
    request = (
        PatchMessageRequest.builder()
        .message_id(message_id)
        .request_body(PatchMessageRequestBody.builder().content(content).build())
    )
    return await client.im.v1.message.apatch(request.build())


async def reply(client: Any, message_id: str, text: str, *, in_thread: bool = False) -> Any:
    body = (
        ReplyMessageRequestBody.builder()
        .msg_type("text")
        .content(json.dumps({"text": text}))
        .reply_in_thread(in_thread)
        .build()
    )
    request = ReplyMessageRequest.builder().message_id(message_id).request_body(body).build()
    return await client.im.v1.message.areply(request)


# --- tenant token -------------------------------------------------------------------------


async def test_one_token_serves_many_calls(fs: FakeFeishu) -> None:
    client = lark_client(fs)
    for text in ("a", "b", "c"):
        assert (await send(client, "oc_g", "text", json.dumps({"text": text}))).code == 0
    assert len(fs.calls_named("tenant_access_token.internal")) == 1
    assert [m.text for m in fs.messages("oc_g")] == ["a", "b", "c"]


async def test_expired_tokens_are_refused_until_the_sdk_fetches_a_new_one(fs: FakeFeishu) -> None:
    client = lark_client(fs)
    assert (await send(client, "oc_g", "text", json.dumps({"text": "a"}))).code == 0
    fs.expire_tokens()
    refused = await send(client, "oc_g", "text", json.dumps({"text": "b"}))
    assert refused.code == 99991663
    # the SDK keeps its cached token until expiry: dropping it makes it fetch a new one
    forget_token(fs)
    assert (await send(client, "oc_g", "text", json.dumps({"text": "c"}))).code == 0
    assert len(fs.calls_named("tenant_access_token.internal")) == 2
    assert [m.text for m in fs.messages("oc_g")] == ["a", "c"]


async def test_a_wrong_secret_gets_no_token(fs: FakeFeishu) -> None:
    client = lark_client(fs, app_secret="wrong")
    with pytest.raises(ObtainAccessTokenException):
        await send(client, "oc_g", "text", json.dumps({"text": "a"}))
    assert fs.calls_named("tenant_access_token.internal")[0].code == 10014
    assert fs.messages("oc_g") == []


async def test_token_lifetime_and_renewal_follow_the_clock() -> None:
    clock = ManualClock()
    async with FakeFeishu(clock=clock) as fs, aiohttp.ClientSession() as http:
        credentials = {"app_id": fs.app_id, "app_secret": fs.app_secret}

        async def fetch() -> dict[str, Any]:
            # no Content-Type, as the SDK sends it
            async with http.post(fs.base_url + TOKEN_PATH, data=json.dumps(credentials)) as r:
                return dict(await r.json())

        async def use(token: str) -> int:
            headers = {"Authorization": f"Bearer {token}"}
            body = {"receive_id": "oc_g", "msg_type": "text", "content": '{"text":"x"}'}
            url = fs.base_url + "/open-apis/im/v1/messages?receive_id_type=chat_id"
            async with http.post(url, json=body, headers=headers) as r:
                return int((await r.json())["code"])

        fs.add_chat("oc_g", "group")
        first = await fetch()
        assert first["expire"] == 7200 and first["tenant_access_token"].startswith("t-")
        clock.advance(3600)
        assert (await fetch())["tenant_access_token"] == first["tenant_access_token"]
        clock.advance(2000)  # 1600 s left: less than 30 minutes, so a new token
        second = await fetch()
        assert second["tenant_access_token"] != first["tenant_access_token"]
        assert await use(first["tenant_access_token"]) == 0  # both stay valid
        clock.advance(1601)
        assert await use(first["tenant_access_token"]) == 99991663
        assert await use(second["tenant_access_token"]) == 0
        assert await use("") == 99991661


# --- messages -----------------------------------------------------------------------------


async def test_send_checks_chat_content_and_size(fs: FakeFeishu) -> None:
    client = lark_client(fs)
    assert (await send(client, "oc_nowhere", "text", '{"text":"a"}')).code == 230002
    assert (await send(client, "oc_g", "text", "not json")).code == 230001
    assert (await send(client, "oc_g", "video", '{"text":"a"}')).code == 230001
    big = json.dumps({"text": "x" * (150 * 1024)})
    assert (await send(client, "oc_g", "text", big)).code == 230025
    assert (await send(client, "oc_g", "interactive", card("y" * 31_000))).code == 230025
    assert fs.messages("oc_g") == []
    answer = await send(client, "oc_g", "interactive", card("fits"))
    assert (
        answer.code == 0 and answer.data.chat_id == "oc_g" and answer.data.msg_type == "interactive"
    )
    assert fs.messages("oc_g")[0].card is not None and fs.messages("oc_g")[0].text == "fits"


async def test_a_uuid_sends_once(fs: FakeFeishu) -> None:
    client = lark_client(fs)
    first = await send(client, "oc_g", "text", '{"text":"a"}', uuid="u-1")
    again = await send(client, "oc_g", "text", '{"text":"a"}', uuid="u-1")
    assert first.data.message_id == again.data.message_id
    assert len(fs.messages("oc_g")) == 1


async def test_five_sends_per_second_per_chat(fs: FakeFeishu) -> None:
    client = lark_client(fs)
    codes = [(await send(client, "oc_g", "text", '{"text":"a"}')).code for _ in range(6)]
    assert codes == [0, 0, 0, 0, 0, 230020]
    assert isinstance(fs.clock, ManualClock)
    fs.clock.advance(1.0)
    assert (await send(client, "oc_g", "text", '{"text":"a"}')).code == 0


async def test_replies_join_and_open_threads(fs: FakeFeishu) -> None:
    client = lark_client(fs)
    question = fs.prepare_user_message("oc_g", "ou_alice", "question", mention_bot=True)
    root = question["event"]["message"]["message_id"]
    plain = await reply(client, root, "answer")
    assert plain.code == 0
    assert plain.data.root_id == root and plain.data.parent_id == root and not plain.data.thread_id
    threaded = await reply(client, root, "in thread", in_thread=True)
    thread_id = threaded.data.thread_id
    assert thread_id and fs.message(root).thread_id == thread_id
    follow_up = fs.prepare_user_message(
        "oc_g", "ou_alice", "more", parent_id=threaded.data.message_id
    )
    assert follow_up["event"]["message"]["thread_id"] == thread_id
    assert follow_up["event"]["message"]["root_id"] == root
    assert (await reply(client, "om_missing", "x")).code == 230001


async def test_patch_updates_cards_within_the_limits(fs: FakeFeishu) -> None:
    client = lark_client(fs)
    text = (await send(client, "oc_g", "text", '{"text":"a"}')).data.message_id
    assert (await patch(client, text, card("x"))).code == 230001
    message_id = (await send(client, "oc_g", "interactive", card("v0"))).data.message_id
    results = [(await patch(client, message_id, card(f"v{i}"))).code for i in range(1, 7)]
    assert results == [0, 0, 0, 0, 0, 230020]
    assert fs.message(message_id).text == "v5" and fs.message(message_id).patch_count == 5
    assert isinstance(fs.clock, ManualClock)
    fs.clock.advance(1.0)
    assert (await patch(client, message_id, card("z" * 31_000))).code == 230025
    old_style = json.dumps({"config": {"update_multi": False}, "elements": []})
    assert (await patch(client, message_id, old_style)).code == 230001
    assert (await patch(client, message_id, card("v6"))).code == 0
    fs.clock.advance(14 * 86400)
    forget_token(fs)  # the token expired too
    assert (await patch(client, message_id, card("late"))).code == 230031
    assert fs.message(message_id).text == "v6"


async def test_text_edits_are_limited_to_twenty(fs: FakeFeishu) -> None:
    client = lark_client(fs, app_secret=None)
    message_id = (await send(client, "oc_g", "text", '{"text":"a"}')).data.message_id

    async def edit(n: int) -> int:
        body = (
            UpdateMessageRequestBody.builder()
            .msg_type("text")
            .content(json.dumps({"text": f"e{n}"}))
        )
        request = UpdateMessageRequest.builder().message_id(message_id).request_body(body.build())
        return int((await client.im.v1.message.aupdate(request.build())).code)

    assert [await edit(n) for n in range(21)] == [0] * 20 + [230072]
    assert fs.message(message_id).text == "e19"


async def test_injected_failures_answer_once(fs: FakeFeishu) -> None:
    client = lark_client(fs)
    fs.fail_next("message.create", 99991400)
    limited = await send(client, "oc_g", "text", '{"text":"a"}')
    assert limited.code == 99991400
    assert limited.raw.status_code == 429
    assert limited.raw.headers.get("x-ogw-ratelimit-reset") == "1"
    assert (await send(client, "oc_g", "text", '{"text":"a"}')).code == 0
    assert [c.code for c in fs.calls_named("message.create")] == [99991400, 0]
    fs.fail_next("/open-apis/im/v1/messages", 99991400, reset=2.5)
    slower = await send(client, "oc_g", "text", '{"text":"a"}')
    assert slower.code == 99991400 and slower.raw.headers.get("x-ogw-ratelimit-reset") == "2.5"


# --- resources ----------------------------------------------------------------------------


async def test_uploaded_images_and_files_can_be_sent_and_downloaded(fs: FakeFeishu) -> None:
    client = lark_client(fs)
    image_body = (
        CreateImageRequestBody.builder().image_type("message").image(io.BytesIO(b"\x89PNG-1"))
    )
    image = await client.im.v1.image.acreate(
        CreateImageRequest.builder().request_body(image_body.build()).build()
    )
    assert image.code == 0 and image.data.image_key.startswith("img_")
    file_body = (
        CreateFileRequestBody.builder()
        .file_type("stream")
        .file_name("report.txt")
        .file(io.BytesIO(b"report body"))
    )
    file = await client.im.v1.file.acreate(
        CreateFileRequest.builder().request_body(file_body.build()).build()
    )
    assert file.code == 0 and fs.resource(file.data.file_key) == b"report body"
    sent = await send(client, "oc_g", "image", json.dumps({"image_key": image.data.image_key}))
    assert sent.code == 0
    download = await client.im.v1.message_resource.aget(
        GetMessageResourceRequest.builder()
        .message_id(sent.data.message_id)
        .file_key(image.data.image_key)
        .type("image")
        .build()
    )
    assert download.code == 0 and download.file.read() == b"\x89PNG-1"
    assert (await send(client, "oc_g", "image", '{"image_key":"img_unknown"}')).code == 230001


async def test_user_attachments_download_only_from_their_message(fs: FakeFeishu) -> None:
    client = lark_client(fs)
    fs.webhook_url = None
    image_msg = fs.prepare_user_message("oc_g", "ou_alice", image=b"\x89PNG-user")["event"][
        "message"
    ]
    file_msg = fs.prepare_user_message("oc_g", "ou_bob", file=("notes.md", b"# notes"))["event"][
        "message"
    ]
    image_key = json.loads(image_msg["content"])["image_key"]
    file_content = json.loads(file_msg["content"])
    assert image_msg["message_type"] == "image" and file_msg["message_type"] == "file"

    async def get(message_id: str, key: str, kind: str) -> Any:
        request = (
            GetMessageResourceRequest.builder().message_id(message_id).file_key(key).type(kind)
        )
        return await client.im.v1.message_resource.aget(request.build())

    got = await get(file_msg["message_id"], file_content["file_key"], "file")
    assert got.file.read() == b"# notes"
    # the async client loses the file name (httpx lower-cases the header the SDK looks up);
    # the header is there, and the sync client reads it
    assert 'filename="notes.md"' in got.raw.headers["content-disposition"]
    request = GetMessageResourceRequest.builder().message_id(file_msg["message_id"])
    sync = client.im.v1.message_resource.get(
        request.file_key(file_content["file_key"]).type("file").build()
    )
    assert sync.file_name == "notes.md"
    assert (await get(image_msg["message_id"], image_key, "image")).file.read() == b"\x89PNG-user"
    # errors: the async client also misses the Content-Type (same header case), so read raw
    wrong_message = await get(file_msg["message_id"], image_key, "image")
    assert wrong_message.raw.status_code == 400
    assert json.loads(wrong_message.raw.content)["code"] == 234003
    wrong_type = client.im.v1.message_resource.get(
        GetMessageResourceRequest.builder()
        .message_id(image_msg["message_id"])
        .file_key(image_key)
        .type("video")
        .build()
    )
    assert wrong_type.code == 234001


async def test_image_and_text_arrive_as_a_post(fs: FakeFeishu) -> None:
    event = fs.prepare_user_message("oc_g", "ou_alice", "look", image=b"img", mention_bot=True)
    message = event["event"]["message"]
    assert message["message_type"] == "post"
    content = json.loads(message["content"])
    assert [n["tag"] for n in content["content"][0]] == ["at", "text"]
    assert content["content"][1][0]["tag"] == "img"
    assert message["mentions"][0]["id"]["open_id"] == fs.bot_open_id


def test_big_sizes_are_configurable() -> None:
    assert Limits().card_bytes == 30 * 1024 and Limits(card_bytes=10).card_bytes == 10


# --- calls lark-oapi has no typed method for ------------------------------------------------


async def raw(client: Any, method: str, uri: str, body: dict[str, Any] | None = None) -> Any:
    import lark_oapi as lark

    builder = (
        lark.BaseRequest.builder()
        .http_method(lark.HttpMethod[method])
        .uri(uri)
        .token_types({lark.AccessTokenType.TENANT})
    )
    if body is not None:
        builder = builder.body(body)
    answer = await client.arequest(builder.build())
    return json.loads(answer.raw.content)


async def test_bot_info_names_the_bot(fs: FakeFeishu) -> None:
    answer = await raw(lark_client(fs), "GET", "/open-apis/bot/v3/info")
    assert answer["code"] == 0
    assert answer["bot"]["open_id"] == fs.bot_open_id and answer["bot"]["app_name"] == "HotPlex"


async def test_ephemeral_cards_show_to_one_member_of_a_group(fs: FakeFeishu) -> None:
    client = lark_client(fs)
    card_json = json.loads(card("only for you"))
    body = {"chat_id": "oc_g", "open_id": "ou_bob", "msg_type": "interactive", "card": card_json}
    sent = await raw(client, "POST", "/open-apis/ephemeral/v1/send", body)
    assert sent["code"] == 0
    [view] = fs.messages("oc_g")
    assert view.message_id == sent["data"]["message_id"]
    assert view.ephemeral_to == "ou_bob" and view.text == "only for you"
    fs.add_user("ou_carol")
    stranger = await raw(
        client, "POST", "/open-apis/ephemeral/v1/send", {**body, "open_id": "ou_carol"}
    )
    assert stranger["code"] == 230001
    chat_id = fs.p2p_chat("ou_bob")
    in_p2p = await raw(client, "POST", "/open-apis/ephemeral/v1/send", {**body, "chat_id": chat_id})
    assert in_p2p["code"] == 230001
    deleted = await raw(
        client, "POST", "/open-apis/ephemeral/v1/delete", {"message_id": view.message_id}
    )
    assert deleted["code"] == 0 and fs.message(view.message_id).deleted


def test_the_fake_imports_without_lark_oapi() -> None:
    # a meta-path finder refuses lark_oapi and pycryptodome in a fresh interpreter
    program = (
        "import sys\n"
        "class Refuse:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('lark_oapi', 'Crypto'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Refuse())\n"
        "from hotplex.testing import FakeFeishu\n"
        "with FakeFeishu() as fs:\n"
        "    print(fs.base_url.startswith('http://127.0.0.1:'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "True"), done.stderr
