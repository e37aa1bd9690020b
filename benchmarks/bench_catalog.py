"""Catalog benchmarks: search latency over 10,000 items, and API throughput through gunicorn.

What is measured, and how:

1. **Search latency.** 10,000 realistic service items (事项) of 120 departments, with two to
   five materials each, life events and result licenses, are written with ``bulk_create``;
   their ``search_text`` is built exactly as ``catalog.services.item_record_revision`` builds
   it (checked on a sample, in a rolled-back transaction). A mix of 50 queries (Chinese
   terms such as 营业执照 and 居住证, two-term queries such as "养老 保险", English terms,
   filters by department and item type, and combinations) is run 500 times in turn, each
   time as the API does for one page: ``list(item_search(...)[:20])`` plus ``count()``.
   Reported: p50 and p95 in milliseconds, and the ratio of the p50 to a trivial query
   (``ServiceItem.objects.filter(pk=...).first()``) timed in the same run. A loaded machine
   stops early, after whole rounds of the mix, at 25 s.

2. **Requests per second.** gunicorn (2 gthread workers, 4 threads each, DEBUG off) serves
   ``benchmarks/hello_wsgi.py`` on 127.0.0.1 against the same database: Tongban's real URLs
   plus ``GET /bench/hello``, a view that only answers "hello", so both go through the same
   middleware and process. A load generator in this process (8 threads, one keep-alive
   ``http.client`` connection each) sends, per endpoint, a warm-up (50 requests or 2 s) and
   then 3,000 requests, stopping early at 8 s; requests per second is completed requests over
   elapsed time, and the fewest requests any endpoint completed is reported too.
   Every response must be 200; the others are counted and reported as a row. Endpoints:
   ``/bench/hello``, ``/api/v1/catalog/items?q=营业执照`` and ``/api/v1/catalog/items?page=3``.
   The server is always stopped, whatever happens. Only loopback traffic.

The client shares the machine's two cores with the server, so the absolute numbers are
those of this machine under this load; the ratios are what to compare between runs.
"""

import http.client
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from django.conf import settings
from django.db import connection, transaction
from django.test.utils import override_settings

from tongban.catalog import selectors
from tongban.catalog.models import LicenseType, LifeEvent, Material, ServiceItem
from tongban.catalog.services import _search_text, item_record_revision
from tongban.people.models import Department
from tongban.portal.demo import credit_code

Row = tuple[str, float, str]

ITEM_COUNT = 10_000
SEARCH_ITERATIONS = 500
SEARCH_TIME_LIMIT = 25.0  # seconds; stops early, after a whole round of the query mix
SEED = 20260101

HTTP_THREADS = 8
HTTP_REQUESTS = 3_000
HTTP_WARMUP = 50
HTTP_WARMUP_TIME_LIMIT = 2.0
HTTP_TIME_LIMIT = 8.0
SERVER_WORKERS = 2
SERVER_THREADS = 4
SERVER_START_TIMEOUT = 30.0

BENCH_DIR = Path(__file__).resolve().parent

# --- The synthetic catalog --------------------------------------------------------------

REGIONS = {
    "370100": "演示市",
    "370102": "历下区",
    "370103": "市中区",
    "370104": "槐荫区",
    "370105": "天桥区",
    "370112": "历城区",
}

REGIONS_EN = {
    "370100": "Demo City",
    "370102": "Lixia District",
    "370103": "Shizhong District",
    "370104": "Huaiyin District",
    "370105": "Tianqiao District",
    "370112": "Licheng District",
}

# key: (name suffix, English name)
DEPARTMENT_KINDS = {
    "market": ("市场监督管理局", "Market Regulation Bureau"),
    "police": ("公安局", "Public Security Bureau"),
    "hrss": ("人力资源和社会保障局", "Human Resources and Social Security Bureau"),
    "civil": ("民政局", "Civil Affairs Bureau"),
    "health": ("卫生健康委员会", "Health Commission"),
    "medins": ("医疗保障局", "Medical Security Bureau"),
    "housing": ("住房和城乡建设局", "Housing and Urban-Rural Development Bureau"),
    "land": ("自然资源和规划局", "Natural Resources and Planning Bureau"),
    "transport": ("交通运输局", "Transport Bureau"),
    "education": ("教育局", "Education Bureau"),
    "tax": ("税务局", "Taxation Bureau"),
    "environment": ("生态环境局", "Ecology and Environment Bureau"),
    "culture": ("文化和旅游局", "Culture and Tourism Bureau"),
    "agriculture": ("农业农村局", "Agriculture and Rural Affairs Bureau"),
    "emergency": ("应急管理局", "Emergency Management Bureau"),
    "veterans": ("退役军人事务局", "Veterans Affairs Bureau"),
    "disabled": ("残疾人联合会", "Disabled Persons' Federation"),
    "fund": ("住房公积金管理中心", "Housing Provident Fund Centre"),
    "justice": ("司法局", "Justice Bureau"),
    "commerce": ("商务局", "Commerce Bureau"),
}

LIFE_EVENTS = [
    ("birth", "出生", "Birth", "person"),
    ("school", "入学", "Going to school", "person"),
    ("work", "就业创业", "Work", "person"),
    ("marriage", "婚育", "Marriage and children", "person"),
    ("home", "安居", "Housing", "person"),
    ("medical", "就医", "Health care", "person"),
    ("retire", "退休养老", "Retirement", "person"),
    ("death", "身后事", "After a death", "person"),
    ("start_business", "开办企业", "Starting a business", "organization"),
    ("run_business", "企业经营", "Running a business", "organization"),
    ("close_business", "企业注销", "Closing a business", "organization"),
]

LICENSE_TYPES = [
    ("LT-BIZ", "营业执照", "Business licence", "organization"),
    ("LT-ID", "居民身份证", "Resident ID card", "person"),
    ("LT-RESIDENCE", "居住证", "Residence permit", "person"),
    ("LT-MARRIAGE", "结婚证", "Marriage certificate", "person"),
    ("LT-BIRTH", "出生医学证明", "Birth medical certificate", "person"),
    ("LT-FOOD", "食品经营许可证", "Food business licence", "organization"),
    ("LT-PROPERTY", "不动产权证书", "Real estate title certificate", "person"),
    ("LT-SSCARD", "社会保障卡", "Social security card", "person"),
    ("LT-TRANSPORT", "道路运输经营许可证", "Road transport licence", "organization"),
    ("LT-BUILD", "建筑工程施工许可证", "Construction permit", "organization"),
    ("LT-TEACHER", "教师资格证书", "Teacher qualification certificate", "person"),
    ("LT-DISABILITY", "残疾人证", "Disability certificate", "person"),
]

# key: (name, English name)
MATERIALS = {
    "resident_id_card": ("居民身份证", "Resident ID card"),
    "household_register": ("居民户口簿", "Household register"),
    "application_form": ("申请表", "Application form"),
    "business_licence": ("营业执照", "Business licence"),
    "legal_rep_id": ("法定代表人身份证明", "Legal representative's ID"),
    "articles": ("公司章程", "Articles of association"),
    "premises_proof": ("住所（经营场所）使用证明", "Proof of premises"),
    "power_of_attorney": ("授权委托书", "Power of attorney"),
    "photo": ("近期一寸免冠照片", "Recent photo"),
    "marriage_cert": ("结婚证", "Marriage certificate"),
    "birth_proof": ("出生医学证明", "Birth medical certificate"),
    "residence_permit": ("居住证", "Residence permit"),
    "lease": ("房屋租赁合同", "Lease contract"),
    "property_cert": ("不动产权证书", "Real estate title certificate"),
    "ss_card": ("社会保障卡", "Social security card"),
    "labour_contract": ("劳动合同", "Labour contract"),
    "health_cert": ("健康证明", "Health certificate"),
    "diploma": ("学历证书", "Diploma"),
    "medical_record": ("病历及医疗费用票据", "Medical records and receipts"),
    "death_cert": ("死亡医学证明", "Death certificate"),
    "bank_card": ("本人银行卡", "Bank card"),
    "tax_record": ("完税证明", "Tax payment record"),
    "site_plan": ("平面布局图", "Site plan"),
    "safety_plan": ("安全管理制度", "Safety rules"),
    "disability_assessment": ("残疾评定报告", "Disability assessment"),
}


@dataclass(frozen=True)
class Theme:
    """One family of items of a department: subjects times actions give the names."""

    department: str
    subjects: tuple[str, ...]
    actions: tuple[str, ...]
    item_type: str
    audience: str
    materials: tuple[str, ...]
    life_events: tuple[str, ...] = ()
    license_type: str | None = None
    keywords: str = ""


THEMES = [
    Theme(
        "market",
        ("营业执照", "有限责任公司", "个体工商户", "农民专业合作社", "分公司"),
        ("设立登记", "变更登记", "注销登记", "备案", "补领"),
        "licensing",
        "organization",
        ("legal_rep_id", "articles", "premises_proof", "application_form", "power_of_attorney"),
        ("start_business", "run_business", "close_business"),
        "LT-BIZ",
        "开办企业 执照 开店",
    ),
    Theme(
        "market",
        ("食品经营许可", "食品生产许可", "特种设备使用登记", "药品经营许可"),
        ("新办", "变更", "延续", "注销"),
        "licensing",
        "organization",
        ("business_licence", "site_plan", "safety_plan", "health_cert", "application_form"),
        ("run_business",),
        "LT-FOOD",
        "餐饮 食品 许可证",
    ),
    Theme(
        "police",
        ("居民身份证", "居住证", "户口", "出入境通行证", "机动车驾驶证"),
        ("首次申领", "换领", "补领", "迁移登记", "签注"),
        "public_service",
        "person",
        ("resident_id_card", "household_register", "photo", "residence_permit", "lease"),
        ("birth", "home", "work"),
        "LT-RESIDENCE",
        "身份证 户籍 落户",
    ),
    Theme(
        "police",
        ("出生登记", "死亡注销户口", "投靠落户", "人才引进落户"),
        ("办理", "网上申请"),
        "confirmation",
        "person",
        ("birth_proof", "household_register", "marriage_cert", "death_cert", "resident_id_card"),
        ("birth", "death", "home"),
        None,
        "新生儿 户口 报户口",
    ),
    Theme(
        "hrss",
        ("城乡居民基本养老保险", "职工基本养老保险", "失业保险", "工伤保险", "社会保障卡"),
        ("参保登记", "待遇申领", "关系转移", "信息变更", "补换"),
        "payment",
        "person",
        ("resident_id_card", "ss_card", "bank_card", "labour_contract", "application_form"),
        ("work", "retire"),
        "LT-SSCARD",
        "社保 养老金 退休",
    ),
    Theme(
        "hrss",
        ("就业创业证", "职业技能等级证书", "创业担保贷款", "高校毕业生就业补贴"),
        ("申领", "审核", "发放"),
        "public_service",
        "person",
        ("resident_id_card", "diploma", "labour_contract", "bank_card"),
        ("work",),
        None,
        "就业 补贴 创业",
    ),
    Theme(
        "civil",
        ("结婚登记", "离婚登记", "补领婚姻登记证", "收养登记", "高龄津贴", "最低生活保障"),
        ("申请", "审核", "办理"),
        "confirmation",
        "person",
        ("resident_id_card", "household_register", "photo", "marriage_cert", "bank_card"),
        ("marriage", "retire"),
        "LT-MARRIAGE",
        "婚姻 低保 津贴",
    ),
    Theme(
        "health",
        ("出生医学证明", "生育登记", "医师执业注册", "护士执业注册", "公共场所卫生许可"),
        ("首次签发", "补发", "变更", "注销"),
        "licensing",
        "both",
        ("resident_id_card", "birth_proof", "marriage_cert", "health_cert", "application_form"),
        ("birth", "marriage", "medical"),
        "LT-BIRTH",
        "生育 医疗 卫生",
    ),
    Theme(
        "medins",
        ("基本医疗保险", "异地就医", "医疗费用", "门诊慢特病", "生育保险"),
        ("参保登记", "备案", "报销", "待遇认定", "关系转移接续"),
        "payment",
        "person",
        ("resident_id_card", "ss_card", "medical_record", "bank_card"),
        ("medical", "birth"),
        None,
        "医保 报销 就医",
    ),
    Theme(
        "housing",
        ("建筑工程施工许可", "商品房预售许可", "房屋租赁", "公共租赁住房", "物业服务"),
        ("核发", "变更", "登记备案", "申请", "资格审核"),
        "licensing",
        "both",
        ("business_licence", "lease", "property_cert", "site_plan", "application_form"),
        ("home", "run_business"),
        "LT-BUILD",
        "住房 房屋 建设",
    ),
    Theme(
        "land",
        ("不动产", "国有建设用地使用权", "房屋所有权", "抵押权"),
        ("首次登记", "转移登记", "变更登记", "注销登记", "查询"),
        "confirmation",
        "both",
        ("resident_id_card", "property_cert", "application_form", "tax_record"),
        ("home",),
        "LT-PROPERTY",
        "不动产 房产证 过户",
    ),
    Theme(
        "transport",
        ("道路运输经营许可", "道路运输从业人员资格", "出租汽车驾驶员", "网络预约出租汽车"),
        ("核发", "变更", "延续", "注销"),
        "licensing",
        "both",
        ("business_licence", "resident_id_card", "health_cert", "application_form"),
        ("work", "run_business"),
        "LT-TRANSPORT",
        "运输 网约车 出租车",
    ),
    Theme(
        "education",
        ("教师资格", "义务教育入学", "民办学校办学许可", "学生资助"),
        ("认定", "申请", "审批", "变更"),
        "licensing",
        "both",
        ("resident_id_card", "household_register", "diploma", "health_cert", "lease"),
        ("school", "work"),
        "LT-TEACHER",
        "入学 教师 学校",
    ),
    Theme(
        "tax",
        ("个人所得税", "增值税", "发票", "车辆购置税", "契税"),
        ("申报", "缴纳", "领用", "退税", "减免"),
        "payment",
        "both",
        ("resident_id_card", "business_licence", "tax_record", "bank_card"),
        ("run_business", "home"),
        None,
        "纳税 税务 发票",
    ),
    Theme(
        "environment",
        ("排污许可", "建设项目环境影响评价", "危险废物经营许可"),
        ("核发", "变更", "延续", "审批"),
        "licensing",
        "organization",
        ("business_licence", "site_plan", "safety_plan", "application_form"),
        ("run_business",),
        None,
        "环评 排污 环保",
    ),
    Theme(
        "culture",
        ("娱乐场所经营", "旅行社业务经营", "营业性演出", "网吧经营"),
        ("许可", "变更", "备案"),
        "licensing",
        "organization",
        ("business_licence", "legal_rep_id", "premises_proof", "safety_plan"),
        ("start_business", "run_business"),
        None,
        "文化 旅游 演出",
    ),
    Theme(
        "agriculture",
        ("农药经营许可", "兽药经营许可", "动物防疫条件合格证", "农村宅基地"),
        ("核发", "变更", "审批"),
        "licensing",
        "both",
        ("business_licence", "resident_id_card", "site_plan", "application_form"),
        ("run_business", "home"),
        None,
        "农业 农村 宅基地",
    ),
    Theme(
        "emergency",
        ("危险化学品经营许可", "烟花爆竹经营许可", "安全生产许可"),
        ("核发", "延期", "变更"),
        "licensing",
        "organization",
        ("business_licence", "safety_plan", "site_plan", "application_form"),
        ("run_business",),
        None,
        "安全生产 危化品",
    ),
    Theme(
        "veterans",
        ("退役士兵", "优抚对象", "烈士褒扬"),
        ("安置", "抚恤金发放", "优待证申领"),
        "payment",
        "person",
        ("resident_id_card", "household_register", "bank_card"),
        ("work", "retire"),
        None,
        "退役军人 优待",
    ),
    Theme(
        "disabled",
        ("残疾人证", "残疾人两项补贴", "残疾人就业"),
        ("新办", "换领", "申请", "迁移"),
        "public_service",
        "person",
        ("resident_id_card", "photo", "disability_assessment", "bank_card"),
        ("medical", "work"),
        "LT-DISABILITY",
        "残疾 补贴 护理",
    ),
    Theme(
        "fund",
        ("住房公积金", "公积金贷款", "公积金缴存"),
        ("提取", "申请", "转移接续", "开户登记", "变更"),
        "public_service",
        "both",
        ("resident_id_card", "bank_card", "property_cert", "lease", "labour_contract"),
        ("home", "retire", "work"),
        None,
        "公积金 购房 租房",
    ),
    Theme(
        "justice",
        ("法律援助", "公证", "人民调解", "律师执业"),
        ("申请", "办理", "登记"),
        "public_service",
        "person",
        ("resident_id_card", "application_form", "power_of_attorney"),
        ("death", "marriage"),
        None,
        "法律 公证 遗嘱",
    ),
    Theme(
        "commerce",
        ("对外贸易经营者", "单用途商业预付卡", "二手车交易市场"),
        ("备案登记", "变更", "注销"),
        "filing",
        "organization",
        ("business_licence", "legal_rep_id", "application_form"),
        ("run_business", "close_business"),
        None,
        "外贸 预付卡",
    ),
]

SUMMARY_SENTENCES = [
    "申请人可通过网上办事大厅或政务服务中心窗口提交申请。",
    "材料齐全、符合法定形式的，当场受理。",
    "可通过电子证照共享获取的材料，申请人无需提交。",
    "办理结果可选择邮寄送达或窗口领取。",
    "本事项支持全程网办和跨区域通办。",
    "审查通过后，办理结果同步推送至电子证照库。",
]
CONDITIONS = [
    "申请人具有完全民事行为能力，材料真实有效。",
    "依法设立的企业或其他组织，具有固定经营场所。",
    "在本市连续居住满半年，并有合法稳定就业或住所。",
    "已依法参加社会保险并按时足额缴费。",
]
LEGAL_BASES = [
    "《中华人民共和国行政许可法》",
    "《中华人民共和国社会保险法》",
    "《中华人民共和国市场主体登记管理条例》",
    "《居住证暂行条例》",
    "《中华人民共和国户口登记条例》",
    "《不动产登记暂行条例》",
]

# The query mix: what `GET /api/v1/catalog/items` is asked, as `item_search` arguments.
QUERIES: list[dict[str, Any]] = [
    {"q": "营业执照"},
    {"q": "居住证"},
    {"q": "出生"},
    {"q": "养老 保险"},
    {"q": "身份证"},
    {"q": "结婚"},
    {"q": "公积金"},
    {"q": "医保"},
    {"q": "食品"},
    {"q": "户口"},
    {"q": "不动产"},
    {"q": "社会保障卡"},
    {"q": "退休"},
    {"q": "残疾人"},
    {"q": "驾驶证"},
    {"q": "教师资格"},
    {"q": "注销"},
    {"q": "变更登记"},
    {"q": "补领"},
    {"q": "异地就医"},
    {"q": "营业执照 变更"},
    {"q": "出生 登记"},
    {"q": "居住证 申领"},
    {"q": "公积金 提取"},
    {"q": "食品 许可"},
    {"q": "不动产 登记"},
    {"q": "医疗 报销"},
    {"q": "失业 保险"},
    {"q": "个体工商户 设立"},
    {"q": "历下区 营业执照"},
    {"q": "business licence"},
    {"q": "residence"},
    {"q": "birth"},
    {"q": "量子计算"},
    {"q": "营业执照 量子"},
    {"department": "market-370100"},
    {"department": "hrss-370102"},
    {"department": "police-370112"},
    {"item_type": "licensing"},
    {"item_type": "payment"},
    {"item_type": "filing"},
    {"q": "营业执照", "department": "market-370103"},
    {"q": "养老", "department": "hrss-370100"},
    {"q": "许可", "item_type": "licensing"},
    {"q": "登记", "item_type": "confirmation"},
    {"q": "补贴", "audience": "person"},
    {"q": "出生", "life_event": "birth"},
    {"life_event": "start_business"},
    {"q": "申请", "online_depth": 4},
    {},
]


def _departments() -> list[Department]:
    rows: list[Department] = []
    n = 0
    for region, region_name in REGIONS.items():
        for key, (suffix, name_en) in DEPARTMENT_KINDS.items():
            n += 1
            rows.append(
                Department(
                    code=f"{key}-{region}",
                    credit_code=credit_code("11", "370100", f"{90_000_000 + n:08d}"),
                    name=f"{region_name}{suffix}",
                    name_en=f"{REGIONS_EN[region]} {name_en}",
                    region_code=region,
                )
            )
    return rows


@dataclass
class Catalog:
    """What `build_catalog` made: the items' primary keys, for the baseline query."""

    item_pks: list[int]


def _item_texts(
    item: ServiceItem,
    *,
    department: Department,
    license_name: str,
    event_names: list[str],
    material_names: list[str],
) -> str:
    """`search_text` as `item_record_revision` makes it (same parts, same order)."""
    return _search_text(
        item.name,
        item.name_en,
        item.keywords,
        item.summary,
        department.name,
        license_name,
        " ".join(event_names),
        " ".join(material_names),
    )


def build_catalog(count: int = ITEM_COUNT, seed: int = SEED) -> Catalog:
    """Write `count` items with materials and life events, quickly (bulk_create)."""
    rng = random.Random(seed)
    departments = {d.code: d for d in Department.objects.bulk_create(_departments())}
    # Life events and license types of these codes that the database already holds (the
    # demo city's, say) are used as they are.
    events = {e.code: e for e in LifeEvent.objects.filter(code__in=[e[0] for e in LIFE_EVENTS])}
    events |= {
        e.code: e
        for e in LifeEvent.objects.bulk_create(
            LifeEvent(code=c, name=n, name_en=en, audience=a, order=i)
            for i, (c, n, en, a) in enumerate(LIFE_EVENTS)
            if c not in events
        )
    }
    # The order `item.life_events.all()` gives (LifeEvent.Meta.ordering).
    event_rank = {
        e.code: i
        for i, e in enumerate(sorted(events.values(), key=lambda e: (e.audience, e.order, e.code)))
    }
    licenses = {
        lt.code: lt for lt in LicenseType.objects.filter(code__in=[t[0] for t in LICENSE_TYPES])
    }
    licenses |= {
        lt.code: lt
        for lt in LicenseType.objects.bulk_create(
            LicenseType(code=c, name=n, name_en=en, holder_kind=h)
            for c, n, en, h in LICENSE_TYPES
            if c not in licenses
        )
    }

    items: list[ServiceItem] = []
    plans: list[tuple[list[str], list[str]]] = []  # (material keys, life event codes)
    for n in range(count):
        theme = THEMES[n % len(THEMES)]
        region = rng.choice(list(REGIONS))
        department = departments[f"{theme.department}-{region}"]
        subject, action = rng.choice(theme.subjects), rng.choice(theme.actions)
        name = f"{subject}{action}"
        name_en = f"{subject} {action} ({REGIONS_EN[region]})"
        basic_code = f"{theme.department[:4].upper()}{n % 997:04d}{THEMES.index(theme):04d}"
        material_keys = rng.sample(theme.materials, rng.randint(2, min(5, len(theme.materials))))
        event_codes = sorted(
            rng.sample(theme.life_events, rng.randint(0, min(2, len(theme.life_events)))),
            key=event_rank.__getitem__,
        )
        legal = rng.choice((5, 10, 15, 20, 30, 60))
        license_type = licenses[theme.license_type] if theme.license_type else None
        item = ServiceItem(
            basic_code=basic_code,
            code=f"{department.credit_code}{basic_code}{n:05d}",
            name=name,
            name_en=name_en,
            summary=f"{REGIONS[region]}{name}。" + "".join(rng.sample(SUMMARY_SENTENCES, 2)),
            summary_en=f"{name_en}: apply online or at the service centre.",
            item_type=theme.item_type,
            department=department,
            audience=theme.audience,
            conditions=rng.choice(CONDITIONS),
            conditions_en="See the Chinese conditions.",
            legal_basis=rng.choice(LEGAL_BASES),
            legal_limit_days=legal,
            promised_limit_days=rng.randint(0, legal),
            handling_kind=rng.choice(("immediate", "promised")),
            is_free=rng.random() < 0.85,
            online_depth=rng.choice((1, 2, 3, 4, 4, 4)),
            cross_region=rng.choice(("national", "inter_province", "inter_city", "local")),
            visits_required=rng.choice((0, 0, 0, 1)),
            offline_locations=[{"name": f"{REGIONS[region]}政务服务中心", "address": "综合窗口"}],
            steps=[{"name": s} for s in ("申请", "受理", "审查", "决定", "送达")],
            faq=[],
            result_license_type=license_type if rng.random() < 0.5 else None,
            keywords=theme.keywords if rng.random() < 0.7 else "",
            is_active=rng.random() < 0.97,
        )
        item.search_text = _item_texts(
            item,
            department=department,
            license_name=item.result_license_type.name if item.result_license_type else "",
            event_names=[events[c].name for c in event_codes],
            material_names=[MATERIALS[k][0] for k in material_keys],
        )
        items.append(item)
        plans.append((material_keys, event_codes))

    with transaction.atomic():
        ServiceItem.objects.bulk_create(items, batch_size=1000)
        if any(item.pk is None for item in items):  # backends that return no keys
            by_code = dict(ServiceItem.objects.values_list("code", "pk"))
            for item in items:
                item.pk = by_code[item.code]
        Material.objects.bulk_create(
            (
                Material(
                    item_id=item.pk,
                    key=key,
                    name=MATERIALS[key][0],
                    name_en=MATERIALS[key][1],
                    form=rng.choice(("original", "copy", "original_and_copy", "electronic")),
                    requirement="conditional" if order > 2 else "required",
                    dataset_codes=["population"] if key == "resident_id_card" else [],
                    order=order,
                )
                for item, (keys, _events) in zip(items, plans, strict=True)
                for order, key in enumerate(keys)
            ),
            batch_size=2000,
        )
        through = ServiceItem.life_events.through
        through.objects.bulk_create(
            (
                through(serviceitem_id=item.pk, lifeevent_id=events[code].pk)
                for item, (_keys, codes) in zip(items, plans, strict=True)
                for code in codes
            ),
            batch_size=2000,
        )
    _check_search_text(items[:: max(1, count // 7)])
    return Catalog(item_pks=[item.pk for item in items])


def _check_search_text(sample: list[ServiceItem]) -> None:
    """The bulk-built `search_text` is what the service writes; checked, then rolled back."""
    expected = {item.pk: item.search_text for item in sample}
    with transaction.atomic():
        for item in ServiceItem.objects.filter(pk__in=expected).select_related(
            "department", "result_license_type"
        ):
            item_record_revision(item=item, actor="system")
        actual = dict(ServiceItem.objects.filter(pk__in=expected).values_list("pk", "search_text"))
        transaction.set_rollback(True)
    wrong = [pk for pk in expected if actual[pk] != expected[pk]]
    if wrong:
        raise AssertionError(
            f"bulk search_text differs from item_record_revision for items {wrong}: "
            f"{expected[wrong[0]]!r} != {actual[wrong[0]]!r}"
        )


# --- 1. Search latency ------------------------------------------------------------------


def _time_ms(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def _percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def _search_page(query: dict[str, Any]) -> tuple[list[ServiceItem], int]:
    """One API page: the first 20 results and the total count."""
    qs = selectors.item_search(**query)
    return list(qs[:20]), qs.count()


def _item_by_pk(pk: int) -> ServiceItem | None:
    """The baseline: the most trivial query a request makes."""
    return ServiceItem.objects.filter(pk=pk).first()


def bench_search(catalog: Catalog, iterations: int = SEARCH_ITERATIONS) -> list[Row]:
    for query in QUERIES:  # warm-up; and no query may be empty by mistake of the data
        _search_page(query)
    hits = {QUERIES[i]["q"]: _search_page(QUERIES[i])[1] for i in (0, 1, 2, 3)}
    if not all(hits.values()):
        raise AssertionError(f"the synthetic catalog misses common queries: {hits}")

    rng = random.Random(SEED)
    pks = [rng.choice(catalog.item_pks) for _ in range(iterations)]
    search: list[float] = []
    baseline: list[float] = []
    deadline = time.monotonic() + SEARCH_TIME_LIMIT
    for i in range(iterations):
        if i % len(QUERIES) == 0 and i and time.monotonic() > deadline:
            break
        search.append(_time_ms(partial(_search_page, QUERIES[i % len(QUERIES)])))
        baseline.append(_time_ms(partial(_item_by_pk, pks[i])))
    p50, p95 = _percentile(search, 50), _percentile(search, 95)
    base50 = _percentile(baseline, 50)
    return [
        (f"catalog search p50 ({len(catalog.item_pks):,} items, page+count)", p50, "ms"),
        (f"catalog search p95 ({len(catalog.item_pks):,} items, page+count)", p95, "ms"),
        ("baseline: item by pk p50", base50, "ms"),
        ("ratio: search p50 / item-by-pk p50", p50 / base50, "x"),
        ("catalog search pages timed", len(search), "queries"),
    ]


# --- 2. Requests per second through gunicorn --------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("set DATABASE_URL so that the server uses the benchmark database")
    return url


def _get(conn: http.client.HTTPConnection, path: str) -> int:
    conn.request("GET", path, headers={"Accept": "application/json"})
    response = conn.getresponse()
    response.read()
    return response.status


def gunicorn_start(port: int, log: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start gunicorn serving benchmarks/hello_wsgi.py on loopback `port`, logging to `log`.
    It leads a process group of its own, so one signal to the group reaches every worker."""
    gunicorn = Path(sys.executable).parent / "gunicorn"
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "tongban.config.settings",
        "DATABASE_URL": _database_url(),
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "TONGBAN_DATA_DIR": str(settings.DATA_DIR),
        "LOG_LEVEL": "ERROR",
    }
    return subprocess.Popen(
        [
            str(gunicorn),
            "--pythonpath",
            str(BENCH_DIR),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(SERVER_WORKERS),
            "--worker-class",
            "gthread",
            "--threads",
            str(SERVER_THREADS),
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
            "hello_wsgi:application",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def gunicorn_stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@contextmanager
def gunicorn_server() -> Iterator[int]:
    """Serve benchmarks/hello_wsgi.py on a free loopback port; yield the port; always stop."""
    port = _free_port()
    with tempfile.TemporaryFile() as log:
        proc = gunicorn_start(port, log)
        try:
            _wait_until_serving(proc, port, log)
            yield port
        finally:
            gunicorn_stop(proc)


def _wait_until_serving(proc: subprocess.Popen[bytes], port: int, log: Any) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            if _get(conn, "/bench/hello") == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.1)
    log.seek(0)
    output = log.read().decode(errors="replace")[-4000:]
    raise RuntimeError(f"gunicorn did not serve on port {port} (exit {proc.poll()}):\n{output}")


@dataclass
class LoadResult:
    completed: int
    errors: int
    seconds: float

    @property
    def rps(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0


def load(port: int, path: str, requests: int, time_limit: float) -> LoadResult:
    """Send `requests` GETs of `path` (see `load_calls`); only a 200 answer counts."""
    return load_calls(port, lambda conn: _get(conn, path) == 200, requests, time_limit)


def load_calls(
    port: int,
    call: Callable[[http.client.HTTPConnection], bool],
    requests: int,
    time_limit: float,
) -> LoadResult:
    """Make `requests` calls of `call(connection)` from HTTP_THREADS keep-alive connections,
    stopping early at `time_limit` seconds. A call that returns False or breaks the
    connection is an error."""
    lock = threading.Lock()
    state = {"next": 0, "completed": 0, "errors": 0}
    deadline = time.monotonic() + time_limit

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            while time.monotonic() < deadline:
                with lock:
                    if state["next"] >= requests:
                        return
                    state["next"] += 1
                try:
                    ok = call(conn)
                except (OSError, http.client.HTTPException):
                    ok = False
                    conn.close()  # reconnects on the next request
                with lock:
                    state["completed" if ok else "errors"] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(HTTP_THREADS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(time_limit + 60)
    return LoadResult(state["completed"], state["errors"], time.perf_counter() - start)


ENDPOINTS = {
    "hello": "/bench/hello",
    "catalog q=营业执照": "/api/v1/catalog/items?q=" + quote("营业执照"),
    "catalog page=3": "/api/v1/catalog/items?page=3",
}


def bench_http() -> list[Row]:
    results: dict[str, LoadResult] = {}
    with gunicorn_server() as port:
        for label, path in ENDPOINTS.items():
            load(port, path, HTTP_WARMUP, HTTP_WARMUP_TIME_LIMIT)
            results[label] = load(port, path, HTTP_REQUESTS, HTTP_TIME_LIMIT)
    hello = results["hello"].rps
    min_completed = min(r.completed for r in results.values())
    rows: list[Row] = [(f"http GET {label}", r.rps, "req/s") for label, r in results.items()]
    rows += [
        (f"ratio: {label} / hello", r.rps / hello if hello else 0.0, "x")
        for label, r in results.items()
        if label != "hello"
    ]
    rows.append(("http requests measured (fewest of the endpoints)", min_completed, "req"))
    rows.append(("http non-200 or failed responses", sum(r.errors for r in results.values()), ""))
    return rows


def run() -> list[Row]:
    catalog = build_catalog()
    with override_settings(DEBUG=False):  # no query logging, as in production
        rows = bench_search(catalog)
    connection.close()  # let the server processes have the database to themselves
    return rows + bench_http()
