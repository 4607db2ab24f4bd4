"""The SOLAPI adapter (알림톡 and SMS/LMS) on the official `solapi` SDK: the only module that speaks SOLAPI.

The SDK signs each request (HMAC-SHA256 over Date + salt) and raises a bare `Exception(errorCode, message)` on
a 4xx and `Exception("UnknownError", body)` on a 5xx; both become `ChannelError` here, because nothing was
registered. 알림톡 is sent with `disableSms=True`: the fallback to SMS is ours, so each channel has its own row
in the delivery log instead of SOLAPI's silent replacement.
"""

from __future__ import annotations

import httpx
from solapi import SolapiMessageService
from solapi.error.MessageNotReceiveError import MessageNotReceivedError
from solapi.model import KakaoOption, RequestMessage
from solapi.model.request.messages.get_messages import GetMessagesRequest
from solapi.model.request.send_message_request import SendRequestConfig

from notices.channels.base import ChannelError, DeliveryReport, OutgoingMessage, SendResult

SMS_MAX_BYTES = 90  # over this (in EUC-KR bytes) a text message is an LMS
DELIVERED = "4000"
PENDING = ("2000", "3000")


def sms_type(text: str) -> str:
    return "SMS" if len(text.encode("cp949", errors="replace")) <= SMS_MAX_BYTES else "LMS"


class SolapiChannel:
    def __init__(self, *, api_key: str, api_secret: str, base_url: str, sender: str, pf_id: str):
        self.service = SolapiMessageService(api_key, api_secret)
        self.service.base_url = base_url.rstrip("/")
        self.sender, self.pf_id = sender, pf_id

    def send(self, message: OutgoingMessage) -> SendResult:
        if message.channel == "alimtalk":
            request = RequestMessage(
                from_=self.sender,
                to=message.to,
                text=message.text,
                type="ATA",
                kakao_options=KakaoOption(
                    pf_id=self.pf_id,
                    template_id=message.template_code,
                    variables=message.variables or None,
                    disable_sms=True,
                ),
                custom_fields={"reference": message.reference} if message.reference else None,
            )
        else:
            kind = sms_type(message.text)
            request = RequestMessage(
                from_=self.sender,
                to=message.to,
                text=message.text,
                type=kind,
                subject=message.subject[:40] if kind == "LMS" and message.subject else None,
                custom_fields={"reference": message.reference} if message.reference else None,
            )
        try:
            response = self.service.send(request, SendRequestConfig(show_message_list=True))
        except MessageNotReceivedError as exc:
            failed = exc.failed_messages[0]
            return SendResult(accepted=False, code=failed.status_code, message=failed.status_message)
        except httpx.HTTPError as exc:
            raise ChannelError(f"SOLAPI unreachable: {exc}", code="unavailable") from exc
        except Exception as exc:  # the SDK's bare Exception(errorCode, errorMessage)
            code = str(exc.args[0]) if exc.args else "UnknownError"
            raise ChannelError(f"SOLAPI refused the request: {exc.args[1:] or exc}", code=code) from exc
        if response.message_list:
            return SendResult(accepted=True, provider_message_id=response.message_list[0].message_id)
        failed = (response.failed_message_list or [None])[0]
        return SendResult(
            accepted=False,
            code=failed.status_code if failed else "unknown",
            message=failed.status_message if failed else "no message registered",
        )

    def reports(self, provider_message_ids: list[str]) -> list[DeliveryReport]:
        reports = []
        for message_id in provider_message_ids:
            try:
                answer = self.service.get_messages(GetMessagesRequest(message_id=message_id))
            except httpx.HTTPError as exc:
                raise ChannelError(f"SOLAPI unreachable: {exc}", code="unavailable") from exc
            except Exception as exc:
                raise ChannelError(
                    f"SOLAPI refused the report: {exc}", code=str(exc.args[0] if exc.args else "")
                ) from exc
            found = answer.message_list.get(message_id)
            if found is None:
                continue
            status = found.status_code or ""
            state = "delivered" if status == DELIVERED else "pending" if status in PENDING else "failed"
            reports.append(DeliveryReport(provider_message_id=message_id, state=state, code=status))
        return reports
