"""Synthetic ordinary notifications, generated here from templates (training rows only).

Why: none of the corpora's normal rows is a brand-signed notification (spam800k's normals are
chat and news fragments, not one carries a 【signature】), while 1,300 fake-base-station
phishing rows impersonate banks. A model trained on that alone learns "【工商银行】 + 验证码 +
尾号" as fraud and rejects the most common real SMS there is. These rows (verification codes,
transaction alerts, deliveries, bills, appointments, in Chinese and English) are labelled
normal and always go to the training side of the split (never validation), so the validation
metrics only count the project's hand-written and the corpora's rows.

Deterministic for a seed. They carry no URLs to phishing-like domains on purpose; a few carry
the brand's real-looking service number.
"""
from __future__ import annotations

import random

from app.training.dataset import Row

_BANKS = ["工商银行", "建设银行", "农业银行", "中国银行", "招商银行", "交通银行", "邮储银行", "浦发银行",
          "中信银行", "光大银行", "民生银行", "兴业银行", "平安银行", "华夏银行", "广发银行", "北京银行"]
_APPS = ["美团", "淘宝", "京东", "支付宝", "微信支付", "滴滴出行", "饿了么", "拼多多", "抖音", "小红书", "12306",
         "携程", "高德地图", "哔哩哔哩", "网易", "腾讯科技", "中国移动", "中国联通", "中国电信", "国家政务服务平台",
         "个人所得税", "交管12123", "顺丰速运", "菜鸟", "闲鱼", "知乎", "钉钉", "飞书", "百度", "爱奇艺"]
_COURIERS = ["顺丰速运", "中通快递", "圆通速递", "韵达快递", "申通快递", "京东物流", "邮政EMS", "极兔速递", "菜鸟驿站"]
_SERVICES = ["95588", "95533", "95599", "95566", "95555", "95559", "95580", "95528", "10086", "10010", "10000"]
_MERCHANTS = ["美团外卖", "滴滴出行", "京东商城", "沃尔玛", "星巴克", "中国石化", "国家电网", "肯德基", "盒马鲜生",
              "永辉超市", "12306铁路", "支付宝-余额宝", "微信-零钱通", "物业管理处", "自来水公司"]
_HOSPITALS = ["市第一人民医院", "区妇幼保健院", "协和医院", "中心医院", "口腔医院", "社区卫生服务中心"]
_PLACES = ["小区东门丰巢柜", "菜鸟驿站(3号楼底商)", "学校快递点", "公司前台", "小区物业", "超市旁驿站"]

_ZH = [
    "【{bank}】您尾号{d4}的储蓄卡{mm}月{dd}日{hh}:{mi}消费支出人民币{amt}元,活期余额{bal}元。",
    "【{bank}】您尾号{d4}的信用卡本期账单金额{amt}元,最后还款日{mm}月{dd}日,请按时还款。",
    "【{bank}】您账户{d4}于{mm}月{dd}日收到工资转入{amt}元,余额{bal}元。",
    "【{bank}】验证码{d6},您正在进行{op},5分钟内有效。切勿将验证码告知他人,我行不会索要验证码。",
    "【{bank}】您尾号{d4}的卡于{mm}月{dd}日向{name}转账{amt}元,如非本人操作请致电{svc}。",
    "【{bank}】尊敬的客户,您的信用卡已于今日寄出,请注意查收。激活请通过官方APP或拨打{svc}。",
    "【{bank}】您的定期存款{amt}元已到期,已按约定自动转存。详询{svc}。",
    "【{app}】验证码:{d6},{n}分钟内有效,请勿泄露给他人。",
    "【{app}】您的验证码是{d4},用于{op},如非本人操作请忽略本短信。",
    "【{app}】您正在登录账号,验证码{d6}。若非本人操作,请及时修改密码。",
    "【{courier}】您的快递已到{place},取件码{d4},请于{mm}月{dd}日前取件。",
    "【{courier}】您的包裹正在派送中,快递员{name},电话{phone},请保持电话畅通。",
    "【{app}】您的订单{d8}已发货,预计{mm}月{dd}日送达。",
    "【{merchant}】您于{mm}月{dd}日支付{amt}元,订单号{d8},感谢您的使用。",
    "【国家电网】您户号{d8}的本月电费{amt}元,余额{bal}元,请及时缴费。",
    "【{hospital}】您已成功预约{mm}月{dd}日{hh}:{mi}的门诊,请携带身份证按时就诊。",
    "【中国移动】尊敬的客户,您本月话费{amt}元,当前余额{bal}元,详询{svc}。",
    "【中国联通】您的流量已使用{pct}%,剩余{n}GB,详询10010。",
    "【{app}】您的账号于{mm}月{dd}日{hh}:{mi}在新设备登录,如非本人操作请尽快修改密码。",
    "【12306】订单{d8}:{name}您已购{mm}月{dd}日G{d4}次{n}车{d2}号座,请凭身份证乘车。",
    "【交管12123】您的机动车于{mm}月{dd}日在某路段有一条违法记录,请通过交管12123APP查询处理。",
    "【个人所得税】您{yy}年度综合所得汇算清缴已完成,退税{amt}元将退至您的银行账户。",
    "{name},明天上午{hh}点在{d2}楼会议室开会,记得带上周的材料。",
    "老婆我到{place}了,你下来吧",
    "妈,我这周末回家,想吃你做的红烧肉",
    "{name}你好,我是你的班主任,明天家长会{hh}点开始,请准时参加。",
    "您好,您预约的{mm}月{dd}日上门维修已确认,师傅{name}电话{phone}。",
    "【{bank}】您尾号{d4}的账户正在进行大额转账{amt}元,如非本人操作请立即致电{svc}冻结。",
    "【{bank}】验证码{d6}",
    "【{bank}】验证码:{d6}。",
    "【{bank}】验证码{d6},用于手机银行登录。我行工作人员不会向您索取此验证码,请勿泄露。",
    "【{bank}】动态密码{d6},用于{op},请勿告诉他人。",
    "{bank}:您的验证码为{d6},有效期5分钟。",
    "【{bank}】您尾号{d4}的卡{mm}月{dd}日转入{amt}元。",
    "【{bank}】您尾号{d4}的卡{mm}月{dd}日快捷支付{amt}元。",
    "【{bank}】您的手机银行于{mm}月{dd}日{hh}:{mi}登录成功。",
    "【{bank}】温馨提示:我行不会通过短信链接要求您登录网银或升级密码器,请通过官方APP办理业务。",
    "【{bank}】尊敬的客户,您的积分{n}00分将于年底到期,可在我行官方APP积分商城兑换礼品。",
    "【{app}】{d6}是您的验证码,请勿泄露。",
    "【{app}】您的账户已成功绑定尾号{d4}的{bank}储蓄卡。",
    "{name},钱我已经转到你{bank}卡上了,{amt}元,查收一下。",
    "【{bank}】您申请的贷款已审批通过,请通过我行官方APP查看合同,我行不收取任何前期费用。",
]
_EN = [
    "Your {app} verification code is {d6}. It expires in 10 minutes. Do not share it with anyone.",
    "{bank}: a payment of {amt} GBP to {name} was approved on card ending {d4}. Not you? Call us on the number on your card.",
    "Your parcel from {shop} is out for delivery today between {hh}:00 and {hh2}:00.",
    "Reminder: your appointment at {clinic} is on {dd}/{mm} at {hh}:30. Reply C to cancel.",
    "Hi {first}, running 10 mins late, see you at the station",
    "{bank} alert: your balance is {bal} USD as of {dd}/{mm}.",
    "Your order #{d8} has shipped and will arrive on {dd}/{mm}.",
    "Your bill of {amt} is due on {dd}/{mm}. Pay in the app or online banking.",
    "Can you pick up milk on the way home? Thanks {first}",
    "{code} is your login code. We will never call you to ask for it.",
    "{bank}: {code} is your code to approve a payment. Never share it, not even with us.",
    "{bank}: we will never text you a link asking you to verify your account.",
    "Your {app} code: {code}",
]
_EN_BANKS = ["Barclays", "HSBC", "Chase", "Lloyds", "NatWest", "Santander", "Wells Fargo", "Citi", "Monzo"]
_EN_APPS = ["Google", "WhatsApp", "Apple", "Amazon", "PayPal", "Uber", "Microsoft", "Facebook", "Telegram"]
_EN_SHOPS = ["Amazon", "Tesco", "Argos", "ASOS", "eBay", "Walmart", "Target"]
_EN_FIRST = ["Tom", "Anna", "Sam", "Lucy", "Mike", "Jess", "David", "Emma", "Chris", "Sarah"]
_OPS = ["登录", "转账", "支付", "修改密码", "绑定银行卡", "注册", "身份验证", "更换手机号"]
_NAMES = "王伟 李娜 张强 刘洋 陈杰 杨静 赵敏 黄磊 周婷 吴昊 徐丽 孙涛 马超 朱琳 胡斌 郭芳".split()


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def synthetic_notifications(n_zh: int = 1200, n_en: int = 300, seed: int = 13) -> list[Row]:
    rng = random.Random(seed)
    out: list[Row] = []

    def fill(tpl: str) -> str:
        return tpl.format(
            bank=rng.choice(_BANKS), app=rng.choice(_APPS), courier=rng.choice(_COURIERS),
            merchant=rng.choice(_MERCHANTS), hospital=rng.choice(_HOSPITALS), place=rng.choice(_PLACES),
            svc=rng.choice(_SERVICES), name=rng.choice(_NAMES), op=rng.choice(_OPS),
            d2=_digits(rng, 2), d4=_digits(rng, 4), d6=_digits(rng, 6), d8=_digits(rng, 8),
            mm=rng.randint(1, 12), dd=rng.randint(1, 28), hh=rng.randint(7, 21), hh2=rng.randint(12, 22),
            mi=f"{rng.randint(0, 59):02d}", yy=rng.randint(2019, 2025), n=rng.randint(2, 16), pct=rng.randint(50, 95),
            amt=f"{rng.randint(1, 50000)}.{rng.randint(0, 99):02d}", bal=f"{rng.randint(10, 900000)}.{rng.randint(0, 99):02d}",
            phone="1" + rng.choice("3589") + _digits(rng, 9),
            shop=rng.choice(_EN_SHOPS), clinic=rng.choice(["the dental clinic", "Dr Patel's surgery", "City Hospital"]),
            first=rng.choice(_EN_FIRST), code=_digits(rng, 6),
        )

    seen: set[str] = set()
    for lang, tpls, n in (("zh", _ZH, n_zh), ("en", _EN, n_en)):
        tries = 0
        while sum(1 for r in out if r.lang == lang) < n and tries < n * 5:
            tries += 1
            tpl = rng.choice(tpls)
            if lang == "en":
                tpl = tpl.replace("{bank}", rng.choice(_EN_BANKS)).replace("{app}", rng.choice(_EN_APPS))
            text = fill(tpl)
            if text in seen:
                continue
            seen.add(text)
            out.append(Row(text=text, labels=(), lang=lang, source="synthetic", orig="notification",
                           file="(generated: app/training/augment.py)", meta={"project": True, "synthetic": True}))
    return out
