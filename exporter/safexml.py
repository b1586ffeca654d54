"""Safe XML for BBB answers other than getMeetings: a pull parser that never expands
entities, never loads a DTD or anything from the network, and refuses any document that
declares a DTD — the settings of exporter/bbb.py's MeetingsParser, for every BBB call."""

from __future__ import annotations

from collections.abc import Iterator

from confscale.exporter.fetch import PollError
from lxml import etree

# A DTD is where entity bombs and external entities live; BBB never sends one.
_FORBIDDEN = (b"<!DOCTYPE", b"<!ENTITY")
_OVERLAP = max(len(m) for m in _FORBIDDEN) - 1


class SafeFeed:
    """Feed chunks, read the finished ``tag`` elements as they complete, close for the root."""

    def __init__(self, tag: str) -> None:
        self._parser = etree.XMLPullParser(
            events=("end",),
            tag=tag,
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
            remove_blank_text=True,
            collect_ids=False,
        )
        self._tail = b""

    def feed(self, chunk: bytes) -> Iterator[etree._Element]:
        seam = self._tail + chunk[:_OVERLAP]
        if any(marker in chunk or marker in seam for marker in _FORBIDDEN):
            raise PollError("parse", "the document declares a DTD or entities; refused")
        self._tail = (self._tail + chunk[-_OVERLAP:])[-_OVERLAP:]
        try:
            self._parser.feed(chunk)
        except etree.XMLSyntaxError as exc:
            raise PollError("parse", f"invalid XML: {_detail(exc)}") from None
        return self._events()

    def _events(self) -> Iterator[etree._Element]:
        for _event, element in self._parser.read_events():
            yield element

    def close(self) -> etree._Element:
        """The root element, checked: a BBB ``<response>`` with SUCCESS (else PollError:
        ``checksum`` for checksumError, ``failed`` for another FAILED, ``parse``)."""
        try:
            root = self._parser.close()
        except etree.XMLSyntaxError as exc:
            raise PollError("parse", f"invalid XML: {_detail(exc)}") from None
        if root.tag != "response":
            raise PollError("parse", f"expected a <response> document, got <{str(root.tag)[:40]}>")
        returncode = (root.findtext("returncode") or "").strip()
        if returncode == "FAILED":
            key = (root.findtext("messageKey") or "").strip()[:40]
            if key == "checksumError":
                raise PollError("checksum", "BBB refused the checksum (checksumError)")
            raise PollError("failed", f"BBB answered FAILED ({key or 'no messageKey'})")
        if returncode != "SUCCESS":
            raise PollError("parse", "no SUCCESS or FAILED returncode in the answer")
        return root


def _detail(exc: etree.XMLSyntaxError) -> str:
    return str(getattr(exc, "msg", "") or "malformed").split(",")[0].replace("\n", " ")[:80]
