"""Name pools for synthetic demo cases. Swedish and Akan (Twi) names come from Faker's ``sv_SE`` and ``tw_GH``
locales; Faker has no Bosnian, Ewe, Ga or Iraqi Arabic locale with transliterations, so those are listed here:
common names, Bosnian with č ć đ š ž, Arabic as (native script, Latin transliteration) pairs."""

from __future__ import annotations

BOSNIAN_GIVEN_MALE = (
    "Emir", "Amar", "Adnan", "Haris", "Kenan", "Mirza", "Edin", "Senad", "Nermin", "Damir", "Jasmin",
    "Dženan", "Admir", "Armin", "Tarik", "Eldin", "Muhamed", "Almir", "Ćamil", "Šemsudin", "Željko",
    "Dražen", "Mladen", "Goran", "Zlatan", "Nedžad", "Enes", "Faruk", "Hamza", "Samir", "Đorđe", "Muhidin",
    "Ismet", "Safet",
)
BOSNIAN_GIVEN_FEMALE = (
    "Amra", "Lejla", "Selma", "Amina", "Azra", "Emina", "Merima", "Ajla", "Sanela", "Jasmina", "Mirela",
    "Alma", "Dženana", "Šejla", "Nejra", "Maida", "Edina", "Belma", "Medina", "Minela", "Đurđa", "Ljiljana",
    "Snježana", "Vesna", "Nađa", "Ćamila", "Emira", "Hana", "Lamija", "Zerina", "Šefika", "Fikreta",
    "Bisera",
)
BOSNIAN_FAMILY = (
    "Hadžić", "Hodžić", "Kovačević", "Begović", "Hasanović", "Delić", "Mehmedović", "Šehić", "Ahmetović",
    "Čaušević", "Husić", "Imamović", "Muratović", "Osmanović", "Salihović", "Alić", "Mujić", "Halilović",
    "Omerović", "Karić", "Softić", "Suljić", "Đozić", "Džafić", "Bećirović", "Žunić", "Jahić", "Mešić",
    "Ćosić", "Memić", "Pašić", "Babić", "Jović", "Petrović", "Šarić", "Kurtović", "Zukić", "Tahirović",
    "Đulić",
)
ARABIC_GIVEN_MALE = (
    ("محمد", "Mohammed"), ("أحمد", "Ahmed"), ("علي", "Ali"), ("حسن", "Hassan"), ("حسين", "Hussein"), ("عمر",
    "Omar"), ("يوسف", "Youssef"), ("إبراهيم", "Ibrahim"), ("خالد", "Khaled"), ("مصطفى", "Mustafa"), ("عباس",
    "Abbas"), ("كريم", "Karim"), ("سعد", "Saad"), ("ياسر", "Yasser"), ("حيدر", "Haidar"), ("مهدي", "Mahdi"),
    ("جاسم", "Jassim"), ("سلمان", "Salman"), ("طارق", "Tariq"), ("زياد", "Ziad"), ("فراس", "Firas"),
    ("باسم", "Basim"), ("قاسم", "Qasim"), ("مرتضى", "Murtadha"), ("سجاد", "Sajjad"),
)
ARABIC_GIVEN_FEMALE = (
    ("فاطمة", "Fatima"), ("زينب", "Zainab"), ("مريم", "Maryam"), ("نور", "Noor"), ("سارة", "Sara"), ("آية",
    "Aya"), ("رنا", "Rana"), ("هدى", "Huda"), ("ليلى", "Layla"), ("دعاء", "Duaa"), ("شيماء", "Shaimaa"),
    ("رقية", "Ruqayya"), ("سلمى", "Salma"), ("أمل", "Amal"), ("هبة", "Hiba"), ("ياسمين", "Yasmin"),
    ("إسراء", "Israa"), ("زهراء", "Zahraa"), ("وفاء", "Wafaa"), ("بنين", "Banin"),
)
ARABIC_FAMILY = (
    ("الجبوري", "Al-Jubouri"), ("العبيدي", "Al-Obaidi"), ("التميمي", "Al-Tamimi"), ("الدليمي",
    "Al-Dulaimi"), ("الشمري", "Al-Shammari"), ("الربيعي", "Al-Rubaie"), ("الخفاجي", "Al-Khafaji"),
    ("الزبيدي", "Al-Zubaidi"), ("الحسيني", "Al-Husseini"), ("الموسوي", "Al-Musawi"), ("الساعدي",
    "Al-Saadi"), ("العزاوي", "Al-Azzawi"), ("الكعبي", "Al-Kaabi"), ("البياتي", "Al-Bayati"), ("الجنابي",
    "Al-Janabi"), ("النعيمي", "Al-Nuaimi"), ("كاظم", "Kadhim"), ("جواد", "Jawad"), ("عبد الله", "Abdullah"),
    ("الحلي", "Al-Hilli"),
)
EWE_GIVEN_MALE = (
    "Selorm", "Elikem", "Senyo", "Mawuli", "Kafui", "Edem", "Kodzo", "Komla", "Yao", "Kwami", "Dela",
    "Etornam", "Sitsofe", "Fiifi",
)
EWE_GIVEN_FEMALE = (
    "Abla", "Enyonam", "Dzifa", "Sena", "Elinam", "Mawusi", "Akpene", "Esinam", "Yayra", "Dzigbordi",
    "Makafui", "Edinam",
)
EWE_FAMILY = (
    "Kpodo", "Agbeko", "Dzokoto", "Amegah", "Gbeho", "Ahadzi", "Tsikata", "Adzraku", "Agbenyega",
    "Kumordzi", "Gadzekpo", "Ametewee", "Dzramedo", "Akpalu",
)
GA_GIVEN_MALE = (
    "Nii Armah", "Nii Ayi", "Nortey", "Tetteh", "Ayitey", "Odartey", "Nii Okai", "Kpakpo", "Tettey",
    "Ashitey",
)
GA_GIVEN_FEMALE = (
    "Naa Adjeley", "Dede", "Korkor", "Shika", "Adoley", "Naa Ayorkor", "Kaakie", "Lamiley", "Momo",
    "Naa Dedei",
)
GA_FAMILY = (
    "Adjei", "Quaye", "Tetteh", "Lamptey", "Aryee", "Quartey", "Nortey", "Ankrah", "Ashong", "Bortey",
    "Odoi", "Sowah", "Laryea", "Okine",
)
