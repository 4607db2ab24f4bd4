"""The finance report as tables with Korean headers (what a Korean accountant files from), and its CSV and
XLSX renderings. Amounts are whole won as integers; days are KST."""

from __future__ import annotations

import csv
import io

from openpyxl import Workbook
from openpyxl.styles import Font

MOVE_LABELS = {
    "start_mrr": "기초 MRR",
    "new": "신규",
    "expansion": "확장(업그레이드)",
    "reactivation": "재활성",
    "contraction": "축소(다운그레이드)",
    "churn": "이탈(해지)",
    "end_mrr": "기말 MRR",
}


def report_tables(report: dict) -> list[tuple[str, list[str], list[list]]]:
    """(sheet title, headers, rows) for every part of the report."""
    parts = ("charged", "refunded", "net")
    part_names = {"charged": "결제(총액)", "refunded": "환불", "net": "순매출"}
    tax = [
        [
            part_names[p],
            report[p].get("count", ""),
            report[p]["supply_amount"],
            report[p]["vat_amount"],
            report[p]["tax_free_amount"],
            report[p]["amount"],
        ]
        for p in parts
    ]
    plans = [
        [
            r["plan_code"] or "(구독 외)",
            r["plan_name"],
            r["charges"],
            r["charged"],
            r["refunded"],
            r["net"],
            r["net_supply_amount"],
            r["net_vat_amount"],
            r["net_tax_free_amount"],
        ]
        for r in report["by_plan"]
    ]
    mrr = report["mrr"]
    moves = [[MOVE_LABELS[k], mrr[k], mrr["customers"].get(k, "")] for k in MOVE_LABELS]
    deferred = [[d["day"], d["recognised"]] for d in report["deferred"]["daily"]]
    deferred.append(["기간 인식 합계", report["deferred"]["recognised"]])
    deferred.append(["기말 선수수익(이연)", report["deferred"]["deferred_at_end"]])
    return [
        ("부가세", ["구분", "건수", "공급가액", "부가세", "면세금액", "합계"], tax),
        (
            "플랜별 매출",
            ["플랜 코드", "플랜명", "결제 건수", "결제액", "환불액", "순매출", "공급가액", "부가세", "면세금액"],
            plans,
        ),
        ("MRR 변동", ["구분", "금액(원)", "고객 수"], moves),
        ("연간 플랜 수익 인식", ["일자(KST)", "인식 수익(부가세 제외)"], deferred),
    ]


def report_csv(report: dict) -> bytes:
    """UTF-8 with a BOM, so Excel opens the Korean headers correctly; sections separated by a blank line."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["기간", report["period"]])
    for title, headers, rows in report_tables(report):
        writer.writerow([])
        writer.writerow([title])
        writer.writerow(headers)
        writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def report_xlsx(report: dict) -> bytes:
    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, headers, rows in report_tables(report):
        sheet = workbook.create_sheet(title=title[:31])
        sheet.append(["기간", report["period"]])
        sheet.append(headers)
        for cell in sheet[2]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append(row)
        for column in sheet.columns:
            for cell in column:
                if isinstance(cell.value, int):
                    cell.number_format = "#,##0"
        sheet.freeze_panes = "A3"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
