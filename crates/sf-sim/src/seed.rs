//! A realistic, deterministic Japanese org: kanji/kana names, 株式会社-style companies, phone
//! numbers typed every way people type them, Lead/Contact duplicates, converted Leads, records
//! without Phone, users (some inactive), and call Tasks. Records are pushed straight into the
//! compact store (no JSON), so a million records seed in seconds in release builds.

use crate::ids::SfId;
use crate::schema::Obj;
use crate::store::{OrgData, Record};
use crate::value::{DAY_MS, Val};

/// What [`crate::Org::seed_japanese`] created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeedSummary {
    pub leads: usize,
    pub contacts: usize,
    pub accounts: usize,
    pub users: usize,
    pub inactive_users: usize,
    pub tasks: usize,
    pub converted_leads: usize,
    /// Leads/Contacts with no Phone.
    pub without_phone: usize,
    /// Contacts whose Phone is the same number as a Lead's (possibly formatted differently).
    pub cross_duplicates: usize,
}

/// SplitMix64: tiny, fast, and stable across crate versions (determinism matters more than quality).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    fn pick_str(&mut self, xs: &[&'static str]) -> &'static str {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const LAST: &[(&str, &str, &str)] = &[
    ("佐藤", "サトウ", "sato"),
    ("鈴木", "スズキ", "suzuki"),
    ("高橋", "タカハシ", "takahashi"),
    ("田中", "タナカ", "tanaka"),
    ("伊藤", "イトウ", "ito"),
    ("渡辺", "ワタナベ", "watanabe"),
    ("山本", "ヤマモト", "yamamoto"),
    ("中村", "ナカムラ", "nakamura"),
    ("小林", "コバヤシ", "kobayashi"),
    ("加藤", "カトウ", "kato"),
    ("吉田", "ヨシダ", "yoshida"),
    ("山田", "ヤマダ", "yamada"),
    ("佐々木", "ササキ", "sasaki"),
    ("山口", "ヤマグチ", "yamaguchi"),
    ("松本", "マツモト", "matsumoto"),
    ("井上", "イノウエ", "inoue"),
    ("木村", "キムラ", "kimura"),
    ("林", "ハヤシ", "hayashi"),
    ("斎藤", "サイトウ", "saito"),
    ("清水", "シミズ", "shimizu"),
    ("山崎", "ヤマザキ", "yamazaki"),
    ("森", "モリ", "mori"),
    ("池田", "イケダ", "ikeda"),
    ("橋本", "ハシモト", "hashimoto"),
    ("阿部", "アベ", "abe"),
    ("石川", "イシカワ", "ishikawa"),
    ("前田", "マエダ", "maeda"),
    ("藤田", "フジタ", "fujita"),
];
const FIRST: &[(&str, &str, &str)] = &[
    ("太郎", "タロウ", "taro"),
    ("花子", "ハナコ", "hanako"),
    ("翔太", "ショウタ", "shota"),
    ("陽菜", "ヒナ", "hina"),
    ("大輔", "ダイスケ", "daisuke"),
    ("美咲", "ミサキ", "misaki"),
    ("健一", "ケンイチ", "kenichi"),
    ("由美", "ユミ", "yumi"),
    ("拓也", "タクヤ", "takuya"),
    ("さくら", "サクラ", "sakura"),
    ("蓮", "レン", "ren"),
    ("結衣", "ユイ", "yui"),
    ("悠斗", "ユウト", "yuto"),
    ("ひなた", "ヒナタ", "hinata"),
    ("直樹", "ナオキ", "naoki"),
    ("恵子", "ケイコ", "keiko"),
    ("誠", "マコト", "makoto"),
    ("愛", "アイ", "ai"),
    ("浩二", "コウジ", "koji"),
    ("真由美", "マユミ", "mayumi"),
];
const CO_STEM: &[(&str, &str)] = &[
    ("アオゾラ", "aozora"),
    ("ミライ", "mirai"),
    ("サンライズ", "sunrise"),
    ("ひまわり", "himawari"),
    ("東洋", "toyo"),
    ("北斗", "hokuto"),
    ("大和", "yamato"),
    ("桜", "sakura"),
    ("光", "hikari"),
    ("未来", "mirai"),
    ("富士見", "fujimi"),
    ("みなと", "minato"),
    ("若葉", "wakaba"),
    ("青葉", "aoba"),
    ("日の出", "hinode"),
    ("朝日", "asahi"),
    ("銀河", "ginga"),
    ("千代田", "chiyoda"),
    ("浪速", "naniwa"),
    ("瑞穂", "mizuho"),
];
const CO_BIZ: &[(&str, &str)] = &[
    ("商事", "shoji"),
    ("工業", "kogyo"),
    ("建設", "kensetsu"),
    ("不動産", "fudosan"),
    ("システムズ", "systems"),
    ("ソリューションズ", "solutions"),
    ("物流", "butsuryu"),
    ("食品", "foods"),
    ("電機", "denki"),
    ("企画", "kikaku"),
    ("製作所", "seisakusho"),
    ("運輸", "unyu"),
    ("薬品", "yakuhin"),
    ("技研", "giken"),
    ("ホールディングス", "hd"),
];
/// (prefecture, city, area code, street)
const PLACES: &[(&str, &str, &str, &str)] = &[
    ("東京都", "千代田区", "03", "丸の内"),
    ("東京都", "港区", "03", "芝浦"),
    ("東京都", "渋谷区", "03", "道玄坂"),
    ("大阪府", "大阪市北区", "06", "梅田"),
    ("愛知県", "名古屋市中区", "052", "栄"),
    ("神奈川県", "横浜市西区", "045", "みなとみらい"),
    ("北海道", "札幌市中央区", "011", "大通西"),
    ("福岡県", "福岡市博多区", "092", "博多駅前"),
    ("京都府", "京都市下京区", "075", "烏丸通"),
    ("兵庫県", "神戸市中央区", "078", "三宮町"),
    ("宮城県", "仙台市青葉区", "022", "一番町"),
    ("広島県", "広島市中区", "082", "紙屋町"),
];
const SOURCES: &[&str] = &[
    "Web",
    "Phone Inquiry",
    "Partner Referral",
    "Purchased List",
    "Other",
];
const LEAD_STATUS_OPEN: &[&str] = &[
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Not Converted",
];

#[derive(Clone, Copy)]
enum NumKind {
    Land(usize),
    Mobile,
    TollFree,
    Ip050,
}

/// A national number's digit groups, e.g. ["03","1234","5678"].
fn number(rng: &mut Rng) -> Vec<String> {
    let kind = match rng.below(100) {
        0..=54 => NumKind::Land(rng.below(PLACES.len() as u64) as usize),
        55..=84 => NumKind::Mobile,
        85..=91 => NumKind::TollFree,
        _ => NumKind::Ip050,
    };
    let d =
        |rng: &mut Rng, n: u32| format!("{:0width$}", rng.below(10u64.pow(n)), width = n as usize);
    match kind {
        NumKind::Land(p) => {
            let area = PLACES[p].2;
            if area.len() == 2 {
                vec![
                    area.into(),
                    format!("{}{}", 1 + rng.below(9), d(rng, 3)),
                    d(rng, 4),
                ]
            } else {
                vec![
                    area.into(),
                    format!("{}{}", 2 + rng.below(8), d(rng, 2)),
                    d(rng, 4),
                ]
            }
        }
        NumKind::Mobile => vec![
            rng.pick(&["090", "080", "070"]).to_string(),
            format!("{}{}", 1 + rng.below(9), d(rng, 3)),
            d(rng, 4),
        ],
        NumKind::TollFree => vec!["0120".into(), d(rng, 3), d(rng, 3)],
        NumKind::Ip050 => vec![
            "050".into(),
            format!("{}{}", 1 + rng.below(9), d(rng, 3)),
            d(rng, 4),
        ],
    }
}

fn full_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap_or(c),
            '-' => '－',
            '(' => '（',
            ')' => '）',
            '+' => '＋',
            c => c,
        })
        .collect()
}

/// Format a number the way a person might have typed it.
fn typed(rng: &mut Rng, g: &[String]) -> String {
    let national_tail = || format!("{}{}", &g[0][1..], g[1..].concat());
    match rng.below(100) {
        0..=44 => g.join("-"),
        45..=64 => g.concat(),
        65..=74 => format!("+81 {} {}", &g[0][1..], g[1..].join(" ")),
        75..=81 => format!("({}){}-{}", g[0], g[1], g[2]),
        82..=87 => full_width(&g.join("-")),
        88..=92 => format!("+81{}", national_tail()),
        93..=96 => format!("+81-{}-{}", &g[0][1..], g[1..].join("-")),
        _ => g.join(" "),
    }
}

struct Idx {
    first: u16,
    last: u16,
    company: u16,
    phone: u16,
    mobile: u16,
    email: u16,
    street: u16,
    city: u16,
    state: u16,
    postal: u16,
    country: u16,
    source: u16,
    status: u16,
    owner: u16,
    created_by: u16,
    modified_by: u16,
    description: u16,
    title: u16,
}

fn idx(o: Obj, f: &str) -> u16 {
    o.field_idx(f).unwrap_or(u16::MAX)
}

fn indices(o: Obj) -> Idx {
    let addr = if o == Obj::Contact { "Mailing" } else { "" };
    Idx {
        first: idx(o, "FirstName"),
        last: idx(o, "LastName"),
        company: idx(o, "Company"),
        phone: idx(o, "Phone"),
        mobile: idx(o, "MobilePhone"),
        email: idx(o, "Email"),
        street: idx(o, &format!("{addr}Street")),
        city: idx(o, &format!("{addr}City")),
        state: idx(o, &format!("{addr}State")),
        postal: idx(o, &format!("{addr}PostalCode")),
        country: idx(o, &format!("{addr}Country")),
        source: idx(o, "LeadSource"),
        status: idx(o, "Status"),
        owner: idx(o, "OwnerId"),
        created_by: idx(o, "CreatedById"),
        modified_by: idx(o, "LastModifiedById"),
        description: idx(o, "Description"),
        title: idx(o, "Title"),
    }
}

fn push(fields: &mut Vec<(u16, Val)>, i: u16, v: Val) {
    if i != u16::MAX && !v.is_null() {
        fields.push((i, v));
    }
}

struct Person {
    last: &'static (&'static str, &'static str, &'static str),
    first: &'static (&'static str, &'static str, &'static str),
    company: (String, String),
    place: usize,
    phone: Option<Vec<String>>,
}

fn person(rng: &mut Rng) -> Person {
    let stem = rng.pick(CO_STEM);
    let biz = rng.pick(CO_BIZ);
    let name = match rng.below(10) {
        0..=4 => format!("株式会社{}{}", stem.0, biz.0),
        5..=7 => format!("{}{}株式会社", stem.0, biz.0),
        8 => format!("有限会社{}{}", stem.0, biz.0),
        _ => format!("合同会社{}", stem.0),
    };
    Person {
        last: rng.pick(LAST),
        first: rng.pick(FIRST),
        company: (name, format!("{}-{}", stem.1, biz.1)),
        place: rng.below(PLACES.len() as u64) as usize,
        phone: None,
    }
}

pub(crate) fn seed_japanese(data: &mut OrgData, admin: SfId, n: usize, seed: u64) -> SeedSummary {
    let mut rng = Rng(seed ^ 0x5EED_0000_CA11_5AFE);
    let mut sum = SeedSummary::default();
    let now = data.now();
    let year = 365 * DAY_MS;

    // Users: the admin plus a few more; every fifth one (from the fourth) is inactive.
    let n_users = 4 + n / 5000;
    let mut owners = vec![admin];
    let uidx = indices(Obj::User);
    let (u_user, u_active, u_alias) = (
        idx(Obj::User, "Username"),
        idx(Obj::User, "IsActive"),
        idx(Obj::User, "Alias"),
    );
    let tz = idx(Obj::User, "TimeZoneSidKey");
    for k in 0..n_users {
        let p = person(&mut rng);
        let email = format!(
            "{}.{}{}@callsync-sim.example.jp",
            p.first.2,
            p.last.2,
            k + 1
        );
        let active = k % 5 != 3;
        let mut f = Vec::with_capacity(10);
        push(&mut f, u_user, Val::str(&email));
        push(&mut f, uidx.email, Val::str(&email));
        push(&mut f, uidx.first, Val::str(p.first.0));
        push(&mut f, uidx.last, Val::str(p.last.0));
        push(
            &mut f,
            u_alias,
            Val::str(&format!("{}{}", &p.last.2[..p.last.2.len().min(4)], k)),
        );
        push(&mut f, u_active, Val::Bool(active));
        push(&mut f, tz, Val::str("Asia/Tokyo"));
        push(&mut f, uidx.owner, Val::Id(admin));
        let created = now - 2 * year + (rng.below(365) as i64) * DAY_MS;
        let id = data.new_id(Obj::User);
        data.push_record(
            Obj::User,
            Record {
                id,
                created,
                modified: created,
                modstamp: created,
                deleted_at: None,
                purged: false,
                fields: f,
            },
        );
        sum.users += 1;
        if active {
            owners.push(id);
        } else {
            sum.inactive_users += 1;
        }
    }

    let times = |rng: &mut Rng| {
        // Created within the last two years; 70% modified within the last year.
        let created = now - (rng.below(730 * 24) as i64) * 3_600_000 - rng.below(3_600_000) as i64;
        let modified = if rng.chance(70) {
            (now - (rng.below(365 * 24) as i64) * 3_600_000).max(created)
        } else {
            created + (rng.below(30) as i64) * DAY_MS
        }
        .min(now);
        (created, modified)
    };

    // Accounts.
    let n_leads = n * 45 / 100;
    let n_contacts = n - n_leads;
    let n_accounts = (n_contacts / 4).max(usize::from(n_contacts > 0));
    let a_name = idx(Obj::Account, "Name");
    let a_phone = idx(Obj::Account, "Phone");
    let (a_state, a_city, a_street) = (
        idx(Obj::Account, "BillingState"),
        idx(Obj::Account, "BillingCity"),
        idx(Obj::Account, "BillingStreet"),
    );
    let a_owner = idx(Obj::Account, "OwnerId");
    let mut accounts: Vec<(SfId, String, String, usize)> = Vec::with_capacity(n_accounts);
    for _ in 0..n_accounts {
        let p = person(&mut rng);
        let (created, modified) = times(&mut rng);
        let mut f = Vec::with_capacity(8);
        push(&mut f, a_name, Val::str(&p.company.0));
        if rng.chance(80) {
            let g = number(&mut rng);
            push(&mut f, a_phone, Val::str(&g.join("-")));
        }
        let pl = PLACES[p.place];
        push(&mut f, a_state, Val::str(pl.0));
        push(&mut f, a_city, Val::str(pl.1));
        push(
            &mut f,
            a_street,
            Val::str(&format!(
                "{}{}-{}-{}",
                pl.3,
                1 + rng.below(9),
                1 + rng.below(20),
                1 + rng.below(30)
            )),
        );
        push(&mut f, a_owner, Val::Id(*rng.pick(&owners)));
        let id = data.new_id(Obj::Account);
        data.push_record(
            Obj::Account,
            Record {
                id,
                created,
                modified,
                modstamp: modified,
                deleted_at: None,
                purged: false,
                fields: f,
            },
        );
        accounts.push((id, p.company.0, p.company.1, p.place));
        sum.accounts += 1;
    }

    // Contacts.
    let ci = indices(Obj::Contact);
    let c_account = idx(Obj::Contact, "AccountId");
    let c_dept = idx(Obj::Contact, "Department");
    let mut contacts: Vec<(SfId, Option<SfId>, Option<Vec<String>>)> =
        Vec::with_capacity(n_contacts);
    for k in 0..n_contacts {
        let mut p = person(&mut rng);
        let account = if accounts.is_empty() {
            None
        } else {
            Some(accounts[rng.below(accounts.len() as u64) as usize].clone())
        };
        if let Some(a) = &account {
            p.company = (a.1.clone(), a.2.clone());
            p.place = a.3;
        }
        let (created, modified) = times(&mut rng);
        let mut f = Vec::with_capacity(16);
        fill_person(&mut rng, &mut f, &ci, &mut p, k, false, &mut sum);
        push(
            &mut f,
            c_account,
            account.as_ref().map_or(Val::Null, |a| Val::Id(a.0)),
        );
        if rng.chance(30) {
            push(
                &mut f,
                c_dept,
                Val::str(rng.pick_str(&["営業部", "総務部", "経理部", "情報システム部", "購買部"])),
            );
        }
        push(&mut f, ci.owner, Val::Id(*rng.pick(&owners)));
        push(&mut f, ci.created_by, Val::Id(admin));
        push(&mut f, ci.modified_by, Val::Id(admin));
        let id = data.new_id(Obj::Contact);
        data.push_record(
            Obj::Contact,
            Record {
                id,
                created,
                modified,
                modstamp: modified,
                deleted_at: None,
                purged: false,
                fields: f,
            },
        );
        contacts.push((id, account.map(|a| a.0), p.phone));
        sum.contacts += 1;
    }

    // Leads: ~6% converted (pointing at a Contact, usually carrying the same number), and ~4%
    // of the others share a number with a Contact (a cross-object duplicate).
    let li = indices(Obj::Lead);
    let (l_conv, l_conv_contact, l_conv_account, l_conv_date) = (
        idx(Obj::Lead, "IsConverted"),
        idx(Obj::Lead, "ConvertedContactId"),
        idx(Obj::Lead, "ConvertedAccountId"),
        idx(Obj::Lead, "ConvertedDate"),
    );
    let l_unread = idx(Obj::Lead, "IsUnreadByOwner");
    let mut lead_ids = Vec::with_capacity(n_leads);
    for k in 0..n_leads {
        let mut p = person(&mut rng);
        let (created, modified) = times(&mut rng);
        let mut f = Vec::with_capacity(18);
        let converted = !contacts.is_empty() && rng.chance(6);
        let dup_of = (!converted && !contacts.is_empty() && rng.chance(4))
            .then(|| contacts[rng.below(contacts.len() as u64) as usize].clone())
            .filter(|c| c.2.is_some());
        if let Some(c) = &dup_of {
            p.phone = c.2.clone();
            sum.cross_duplicates += 1;
        }
        fill_person(&mut rng, &mut f, &li, &mut p, k, dup_of.is_some(), &mut sum);
        push(&mut f, li.company, Val::str(&p.company.0));
        push(&mut f, li.owner, Val::Id(*rng.pick(&owners)));
        push(&mut f, li.created_by, Val::Id(admin));
        push(&mut f, li.modified_by, Val::Id(admin));
        push(&mut f, l_unread, Val::Bool(rng.chance(30)));
        if converted {
            let c = &contacts[rng.below(contacts.len() as u64) as usize];
            push(&mut f, li.status, Val::str("Closed - Converted"));
            push(&mut f, l_conv, Val::Bool(true));
            push(&mut f, l_conv_contact, Val::Id(c.0));
            push(&mut f, l_conv_account, c.1.map_or(Val::Null, Val::Id));
            push(
                &mut f,
                l_conv_date,
                Val::Date(modified.div_euclid(DAY_MS) as i32),
            );
            sum.converted_leads += 1;
        } else {
            push(&mut f, li.status, Val::str(rng.pick_str(LEAD_STATUS_OPEN)));
        }
        let id = data.new_id(Obj::Lead);
        data.push_record(
            Obj::Lead,
            Record {
                id,
                created,
                modified,
                modstamp: modified,
                deleted_at: None,
                purged: false,
                fields: f,
            },
        );
        lead_ids.push(id);
        sum.leads += 1;
    }

    // Call Tasks on a few records.
    let (t_who, t_what, t_subject, t_status, t_date, t_sub, t_type, t_dur, t_obj, t_disp, t_owner) = (
        idx(Obj::Task, "WhoId"),
        idx(Obj::Task, "WhatId"),
        idx(Obj::Task, "Subject"),
        idx(Obj::Task, "Status"),
        idx(Obj::Task, "ActivityDate"),
        idx(Obj::Task, "TaskSubtype"),
        idx(Obj::Task, "CallType"),
        idx(Obj::Task, "CallDurationInSeconds"),
        idx(Obj::Task, "CallObject"),
        idx(Obj::Task, "CallDisposition"),
        idx(Obj::Task, "OwnerId"),
    );
    let (t_prio, t_cb, t_mb) = (
        idx(Obj::Task, "Priority"),
        idx(Obj::Task, "CreatedById"),
        idx(Obj::Task, "LastModifiedById"),
    );
    let n_tasks = n / 50;
    for k in 0..n_tasks {
        let on_contact = !contacts.is_empty() && (lead_ids.is_empty() || rng.chance(60));
        let (who, what) = if on_contact {
            let c = &contacts[rng.below(contacts.len() as u64) as usize];
            (c.0, c.1)
        } else if !lead_ids.is_empty() {
            (lead_ids[rng.below(lead_ids.len() as u64) as usize], None)
        } else {
            break;
        };
        let created = now - (rng.below(365 * 24) as i64) * 3_600_000;
        let inbound = rng.chance(50);
        let dur = rng.below(900) as i64;
        let mut f = Vec::with_capacity(14);
        push(&mut f, t_who, Val::Id(who));
        push(&mut f, t_what, what.map_or(Val::Null, Val::Id));
        let subject = if inbound {
            format!("着信 ({}:{:02})", dur / 60, dur % 60)
        } else {
            format!("発信 ({}:{:02})", dur / 60, dur % 60)
        };
        push(&mut f, t_subject, Val::str(&subject));
        push(&mut f, t_status, Val::str("Completed"));
        push(&mut f, t_prio, Val::str("Normal"));
        push(&mut f, t_date, Val::Date(created.div_euclid(DAY_MS) as i32));
        push(&mut f, t_sub, Val::str("Call"));
        push(
            &mut f,
            t_type,
            Val::str(if inbound { "Inbound" } else { "Outbound" }),
        );
        push(&mut f, t_dur, Val::Int(dur));
        push(&mut f, t_obj, Val::str(&format!("seed-call-{seed}-{k}")));
        push(&mut f, t_disp, Val::str("answered"));
        push(&mut f, t_owner, Val::Id(*rng.pick(&owners)));
        push(&mut f, t_cb, Val::Id(admin));
        push(&mut f, t_mb, Val::Id(admin));
        let id = data.new_id(Obj::Task);
        data.push_record(
            Obj::Task,
            Record {
                id,
                created,
                modified: created,
                modstamp: created,
                deleted_at: None,
                purged: false,
                fields: f,
            },
        );
        sum.tasks += 1;
    }
    sum
}

fn fill_person(
    rng: &mut Rng,
    f: &mut Vec<(u16, Val)>,
    i: &Idx,
    p: &mut Person,
    k: usize,
    keep_phone: bool,
    sum: &mut SeedSummary,
) {
    // Names: mostly kanji, some katakana (typed from a business card reading), a few without FirstName.
    let kana = rng.chance(8);
    push(f, i.last, Val::str(if kana { p.last.1 } else { p.last.0 }));
    if !rng.chance(5) {
        push(
            f,
            i.first,
            Val::str(if kana { p.first.1 } else { p.first.0 }),
        );
    }
    if keep_phone {
        let g = p.phone.clone().unwrap_or_default();
        let s = typed(rng, &g);
        push(f, i.phone, Val::str(&s));
    } else if rng.chance(8) {
        sum.without_phone += 1;
        p.phone = None;
    } else {
        let g = number(rng);
        let s = typed(rng, &g);
        push(f, i.phone, Val::str(&s));
        p.phone = Some(g);
    }
    if rng.chance(35) {
        let g = vec![
            rng.pick(&["090", "080", "070"]).to_string(),
            format!("{}", 1000 + rng.below(9000)),
            format!("{:04}", rng.below(10_000)),
        ];
        let s = typed(rng, &g);
        push(f, i.mobile, Val::str(&s));
    }
    if rng.chance(85) {
        push(
            f,
            i.email,
            Val::str(&format!(
                "{}.{}{}@{}.example.jp",
                p.first.2,
                p.last.2,
                k % 997,
                p.company.1
            )),
        );
    }
    if rng.chance(75) {
        let pl = PLACES[p.place];
        push(f, i.state, Val::str(pl.0));
        push(f, i.city, Val::str(pl.1));
        push(
            f,
            i.street,
            Val::str(&format!(
                "{}{}-{}-{}",
                pl.3,
                1 + rng.below(9),
                1 + rng.below(20),
                1 + rng.below(30)
            )),
        );
        push(
            f,
            i.postal,
            Val::str(&format!(
                "{:03}-{:04}",
                100 + rng.below(900),
                rng.below(10_000)
            )),
        );
        push(f, i.country, Val::str("日本"));
    }
    if rng.chance(40) {
        push(
            f,
            i.title,
            Val::str(rng.pick_str(&["部長", "課長", "主任", "代表取締役", "担当"])),
        );
    }
    if rng.chance(25) {
        push(f, i.source, Val::str(rng.pick_str(SOURCES)));
    }
    if rng.chance(10) {
        push(
            f,
            i.description,
            Val::str("展示会で名刺交換。折り返しの電話を希望。"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_varied() {
        let mut a = OrgData::new(1);
        let mut b = OrgData::new(1);
        a.clock = crate::store::ClockMode::Frozen(1_700_000_000_000);
        b.clock = crate::store::ClockMode::Frozen(1_700_000_000_000);
        let admin = SfId::make("005", 1, 1);
        let sa = seed_japanese(&mut a, admin, 2000, 7);
        let sb = seed_japanese(&mut b, admin, 2000, 7);
        assert_eq!(sa, sb);
        assert_eq!(sa.leads + sa.contacts, 2000);
        assert!(
            sa.converted_leads > 0
                && sa.without_phone > 0
                && sa.cross_duplicates > 0
                && sa.inactive_users > 0
        );
        let phone = Obj::Lead.field_idx("Phone").unwrap();
        let pa: Vec<_> = a
            .table(Obj::Lead)
            .recs
            .iter()
            .map(|r| r.get(phone).clone())
            .collect();
        let pb: Vec<_> = b
            .table(Obj::Lead)
            .recs
            .iter()
            .map(|r| r.get(phone).clone())
            .collect();
        assert_eq!(pa, pb);
        let texts: Vec<String> = pa
            .iter()
            .filter_map(|v| v.as_text().map(|s| s.to_string()))
            .collect();
        assert!(texts.iter().any(|s| s.starts_with("+81")));
        assert!(texts.iter().any(|s| s.contains('－')));
        assert!(texts.iter().any(|s| s.starts_with('(')));
        assert!(texts.iter().any(|s| s.starts_with("0120")));
    }
}
