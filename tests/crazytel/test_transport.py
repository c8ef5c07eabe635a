"""The transport's own reading of an answer's head: the same headers as http.client's, quicker."""

import http.client
import io

import pytest

from trunks.crazytel.transport import _parse_headers

HEADS = {
    "plain": b"Content-Type: application/json\r\nContent-Length: 2\r\nX-Request-ID: abc\r\n\r\n",
    "bare LF line ends": b"Content-Type: application/json\nContent-Length: 2\n\n",
    "repeated names": b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nVary: Cookie\r\n\r\n",
    "spaces and tabs around values": b"X-A:   spaced  \r\nX-B:\tt\r\nX-C:\r\nX-D:no-space\r\n\r\n",
    "latin-1 bytes": b"X-Name: caf\xe9\r\n\r\n",
    "a folded line": b"X-Long: first\r\n  second\r\nX-After: 1\r\n\r\n",
    "a bare CR inside a value": b"X-A: one\rtwo\r\nX-B: 2\r\n\r\n",
    "a line without a colon": b"X-A: 1\r\nnot a header\r\nX-B: 2\r\n\r\n",
    "an empty name": b": no name\r\nX-B: 2\r\n\r\n",
    "a space before the colon": b"X-A : 1\r\n\r\n",
    "a unix From line": b"From someone\r\nX-B: 2\r\n\r\n",
    "the stream ends inside the head": b"X-A: 1\r\nX-B: 2\r\n",
    "no headers at all": b"\r\n",
}


def _seen(message):
    return (
        type(message),
        message.items(),
        [type(d) for d in message.defects],
        message.get_payload(),
        message.get("x-a"),
        message.get_all("set-cookie"),
    )


@pytest.mark.parametrize("head", HEADS.values(), ids=HEADS.keys())
def test_an_answers_head_reads_as_http_client_reads_it(head):
    ours = _parse_headers(io.BytesIO(head + b"the body"))
    theirs = http.client.parse_headers(io.BytesIO(head + b"the body"))
    assert _seen(ours) == _seen(theirs)


def test_the_head_keeps_http_clients_limit_on_the_number_of_headers():
    head = b"".join(b"X-%d: 1\r\n" % i for i in range(http.client._MAXHEADERS + 1)) + b"\r\n"
    with pytest.raises(http.client.HTTPException):
        _parse_headers(io.BytesIO(head))
