"""Hand-written facts behind the knowledge (factual-recall) task datasets.

Checked by eye, as of 2025. Everything here is plain data; build_knowledge.py turns it
into workbench/data/tasks_builtin/*.json and check_knowledge.py validates the files on disk.

Conventions
-----------
* Countries: common English short names, ASCII only, spelled once in COUNTRIES and reused
  by every dataset (country-capital, country-currency, country-language, landmark-country).
* Capitals: common English names, ASCII (Bogota, Brasilia, Reykjavik ...).
* Currencies: lower-case head word only ("dollar", not "US dollar").
* "-" in a COUNTRIES column means: left out of that dataset on purpose (reason noted).
"""

# ---------------------------------------------------------------------------
# Sovereign states (the 193 UN members). Columns: country | capital | currency | language
# ---------------------------------------------------------------------------
# Left out of country-capital (disputed, split or ambiguous capital, or capital
# identical to the country name):
#   Benin (Porto-Novo official / Cotonou seat), Bolivia (Sucre / La Paz),
#   Burundi (Gitega / Bujumbura), Djibouti (same name), Equatorial Guinea (move to
#   Ciudad de la Paz pending), Eswatini (Mbabane / Lobamba), Indonesia (Jakarta /
#   Nusantara move pending), Israel (Jerusalem disputed), Ivory Coast (Yamoussoukro /
#   Abidjan), Kiribati (Tarawa / South Tarawa naming), Luxembourg (same name),
#   Malaysia (Kuala Lumpur / Putrajaya), Monaco (city-state), Nauru (no official
#   capital), Netherlands (Amsterdam / The Hague), San Marino (same name), Singapore
#   (city-state), South Africa (three capitals), Sri Lanka (Sri Jayawardenepura Kotte /
#   Colombo), Tanzania (Dodoma / Dar es Salaam), Yemen (Sanaa / Aden).
# Left out of country-currency (ambiguous or changing currency):
#   Bhutan (ngultrum + Indian rupee), Bulgaria (lev -> euro on 1 Jan 2026), Costa Rica
#   (colon: accent lost in ASCII), El Salvador (US dollar + bitcoin), Eswatini, Lesotho,
#   Namibia (all three also use the rand), Mongolia (tugrik/togrog spelling), Panama
#   (balboa + US dollar), Tonga (pa'anga spelling), Uzbekistan (som/sum spelling),
#   Zimbabwe (ZiG + US dollar).
# Left out of country-language (several official or main spoken languages, or the
# official language is not the main spoken one): see the "-" entries below; e.g.
# Switzerland, Belgium, India, Canada, Bolivia, Paraguay, Philippines, Singapore, most
# of sub-Saharan Africa (French/English/Portuguese official, other languages spoken).
COUNTRY_TABLE = """
Afghanistan | Kabul | afghani | -
Albania | Tirana | lek | Albanian
Algeria | Algiers | dinar | Arabic
Andorra | Andorra la Vella | euro | Catalan
Angola | Luanda | kwanza | Portuguese
Antigua and Barbuda | St. John's | dollar | English
Argentina | Buenos Aires | peso | Spanish
Armenia | Yerevan | dram | Armenian
Australia | Canberra | dollar | English
Austria | Vienna | euro | German
Azerbaijan | Baku | manat | Azerbaijani
Bahamas | Nassau | dollar | English
Bahrain | Manama | dinar | Arabic
Bangladesh | Dhaka | taka | Bengali
Barbados | Bridgetown | dollar | English
Belarus | Minsk | ruble | -
Belgium | Brussels | euro | -
Belize | Belmopan | dollar | -
Benin | - | franc | -
Bhutan | Thimphu | - | Dzongkha
Bolivia | - | boliviano | -
Bosnia and Herzegovina | Sarajevo | mark | -
Botswana | Gaborone | pula | -
Brazil | Brasilia | real | Portuguese
Brunei | Bandar Seri Begawan | dollar | Malay
Bulgaria | Sofia | - | Bulgarian
Burkina Faso | Ouagadougou | franc | -
Burundi | - | franc | Kirundi
Cambodia | Phnom Penh | riel | Khmer
Cameroon | Yaounde | franc | -
Canada | Ottawa | dollar | -
Cape Verde | Praia | escudo | -
Central African Republic | Bangui | franc | -
Chad | N'Djamena | franc | -
Chile | Santiago | peso | Spanish
China | Beijing | yuan | Chinese
Colombia | Bogota | peso | Spanish
Comoros | Moroni | franc | -
Costa Rica | San Jose | - | Spanish
Croatia | Zagreb | euro | Croatian
Cuba | Havana | peso | Spanish
Cyprus | Nicosia | euro | -
Czech Republic | Prague | koruna | Czech
Democratic Republic of the Congo | Kinshasa | franc | -
Denmark | Copenhagen | krone | Danish
Djibouti | - | franc | -
Dominica | Roseau | dollar | English
Dominican Republic | Santo Domingo | peso | Spanish
East Timor | Dili | dollar | -
Ecuador | Quito | dollar | Spanish
Egypt | Cairo | pound | Arabic
El Salvador | San Salvador | - | Spanish
Equatorial Guinea | - | franc | -
Eritrea | Asmara | nakfa | -
Estonia | Tallinn | euro | Estonian
Eswatini | - | - | -
Ethiopia | Addis Ababa | birr | -
Fiji | Suva | dollar | -
Finland | Helsinki | euro | Finnish
France | Paris | euro | French
Gabon | Libreville | franc | -
Gambia | Banjul | dalasi | -
Georgia | Tbilisi | lari | Georgian
Germany | Berlin | euro | German
Ghana | Accra | cedi | -
Greece | Athens | euro | Greek
Grenada | St. George's | dollar | English
Guatemala | Guatemala City | quetzal | Spanish
Guinea | Conakry | franc | -
Guinea-Bissau | Bissau | franc | -
Guyana | Georgetown | dollar | English
Haiti | Port-au-Prince | gourde | -
Honduras | Tegucigalpa | lempira | Spanish
Hungary | Budapest | forint | Hungarian
Iceland | Reykjavik | krona | Icelandic
India | New Delhi | rupee | -
Indonesia | - | rupiah | Indonesian
Iran | Tehran | rial | Persian
Iraq | Baghdad | dinar | Arabic
Ireland | Dublin | euro | -
Israel | - | shekel | Hebrew
Italy | Rome | euro | Italian
Ivory Coast | - | franc | -
Jamaica | Kingston | dollar | English
Japan | Tokyo | yen | Japanese
Jordan | Amman | dinar | Arabic
Kazakhstan | Astana | tenge | -
Kenya | Nairobi | shilling | -
Kiribati | - | dollar | -
Kuwait | Kuwait City | dinar | Arabic
Kyrgyzstan | Bishkek | som | -
Laos | Vientiane | kip | Lao
Latvia | Riga | euro | Latvian
Lebanon | Beirut | pound | Arabic
Lesotho | Maseru | - | -
Liberia | Monrovia | dollar | English
Libya | Tripoli | dinar | Arabic
Liechtenstein | Vaduz | franc | German
Lithuania | Vilnius | euro | Lithuanian
Luxembourg | - | euro | -
Madagascar | Antananarivo | ariary | Malagasy
Malawi | Lilongwe | kwacha | -
Malaysia | - | ringgit | Malay
Maldives | Male | rufiyaa | Dhivehi
Mali | Bamako | franc | -
Malta | Valletta | euro | -
Marshall Islands | Majuro | dollar | Marshallese
Mauritania | Nouakchott | ouguiya | Arabic
Mauritius | Port Louis | rupee | -
Mexico | Mexico City | peso | Spanish
Micronesia | Palikir | dollar | -
Moldova | Chisinau | leu | Romanian
Monaco | - | euro | French
Mongolia | Ulaanbaatar | - | Mongolian
Montenegro | Podgorica | euro | -
Morocco | Rabat | dirham | Arabic
Mozambique | Maputo | metical | -
Myanmar | Naypyidaw | kyat | Burmese
Namibia | Windhoek | - | -
Nauru | - | dollar | -
Nepal | Kathmandu | rupee | Nepali
Netherlands | - | euro | Dutch
New Zealand | Wellington | dollar | English
Nicaragua | Managua | cordoba | Spanish
Niger | Niamey | franc | -
Nigeria | Abuja | naira | -
North Korea | Pyongyang | won | Korean
North Macedonia | Skopje | denar | Macedonian
Norway | Oslo | krone | Norwegian
Oman | Muscat | rial | Arabic
Pakistan | Islamabad | rupee | Urdu
Palau | Ngerulmud | dollar | -
Panama | Panama City | - | Spanish
Papua New Guinea | Port Moresby | kina | -
Paraguay | Asuncion | guarani | -
Peru | Lima | sol | Spanish
Philippines | Manila | peso | -
Poland | Warsaw | zloty | Polish
Portugal | Lisbon | euro | Portuguese
Qatar | Doha | riyal | Arabic
Republic of the Congo | Brazzaville | franc | -
Romania | Bucharest | leu | Romanian
Russia | Moscow | ruble | Russian
Rwanda | Kigali | franc | Kinyarwanda
Saint Kitts and Nevis | Basseterre | dollar | English
Saint Lucia | Castries | dollar | -
Saint Vincent and the Grenadines | Kingstown | dollar | English
Samoa | Apia | tala | Samoan
San Marino | - | euro | Italian
Sao Tome and Principe | Sao Tome | dobra | Portuguese
Saudi Arabia | Riyadh | riyal | Arabic
Senegal | Dakar | franc | -
Serbia | Belgrade | dinar | Serbian
Seychelles | Victoria | rupee | -
Sierra Leone | Freetown | leone | -
Singapore | - | dollar | -
Slovakia | Bratislava | euro | Slovak
Slovenia | Ljubljana | euro | Slovenian
Solomon Islands | Honiara | dollar | -
Somalia | Mogadishu | shilling | Somali
South Africa | - | rand | -
South Korea | Seoul | won | Korean
South Sudan | Juba | pound | -
Spain | Madrid | euro | Spanish
Sri Lanka | - | rupee | -
Sudan | Khartoum | pound | Arabic
Suriname | Paramaribo | dollar | Dutch
Sweden | Stockholm | krona | Swedish
Switzerland | Bern | franc | -
Syria | Damascus | pound | Arabic
Tajikistan | Dushanbe | somoni | Tajik
Tanzania | - | shilling | Swahili
Thailand | Bangkok | baht | Thai
Togo | Lome | franc | -
Tonga | Nuku'alofa | - | Tongan
Trinidad and Tobago | Port of Spain | dollar | English
Tunisia | Tunis | dinar | Arabic
Turkey | Ankara | lira | Turkish
Turkmenistan | Ashgabat | manat | Turkmen
Tuvalu | Funafuti | dollar | Tuvaluan
Uganda | Kampala | shilling | -
Ukraine | Kyiv | hryvnia | Ukrainian
United Arab Emirates | Abu Dhabi | dirham | Arabic
United Kingdom | London | pound | English
United States | Washington, D.C. | dollar | English
Uruguay | Montevideo | peso | Spanish
Uzbekistan | Tashkent | - | Uzbek
Vanuatu | Port Vila | vatu | -
Venezuela | Caracas | bolivar | Spanish
Vietnam | Hanoi | dong | Vietnamese
Yemen | - | rial | Arabic
Zambia | Lusaka | kwacha | -
Zimbabwe | Harare | - | -
"""


def _parse_countries():
    rows = {}
    for line in COUNTRY_TABLE.strip().splitlines():
        cells = [c.strip() for c in line.split("|")]
        assert len(cells) == 4, line
        name, capital, currency, language = (None if c == "-" else c for c in cells)
        assert name and name not in rows, line
        rows[name] = {"capital": capital, "currency": currency, "language": language}
    return rows


COUNTRIES = _parse_countries()

# ---------------------------------------------------------------------------
# Landmark -> country. Only landmarks wholly inside one sovereign state, with a name
# that points to one place. Left out: border sites (Niagara Falls, Iguazu Falls,
# Victoria Falls, Mount Everest, Matterhorn, Mont Blanc, Lake Titicaca), sites in
# disputed territory (Western Wall, Dome of the Rock, Potala Palace, Taipei 101),
# Vatican sites (St. Peter's Basilica, Sistine Chapel), generic names (Pantheon,
# Grand Palace, Central Park, Summer Palace, Twelve Apostles, Blue Lagoon) and names
# shared with other well-known places (Mount Olympus: also Washington state; Palmyra:
# also Palmyra Atoll; Registan: also a desert in Afghanistan; Blue Mosque: several;
# Sugarloaf Mountain: also in the US; Atacama Desert: reaches into Peru/Bolivia/Argentina).
# ---------------------------------------------------------------------------
LANDMARKS = """
Eiffel Tower | France
Louvre | France
Mont Saint-Michel | France
Arc de Triomphe | France
Palace of Versailles | France
Notre-Dame de Paris | France
Colosseum | Italy
Leaning Tower of Pisa | Italy
Trevi Fountain | Italy
Pompeii | Italy
Doge's Palace | Italy
Rialto Bridge | Italy
Milan Cathedral | Italy
Roman Forum | Italy
Big Ben | United Kingdom
Stonehenge | United Kingdom
Tower of London | United Kingdom
Buckingham Palace | United Kingdom
Edinburgh Castle | United Kingdom
Westminster Abbey | United Kingdom
Tower Bridge | United Kingdom
Hadrian's Wall | United Kingdom
Giant's Causeway | United Kingdom
Loch Ness | United Kingdom
Statue of Liberty | United States
Grand Canyon | United States
Golden Gate Bridge | United States
Mount Rushmore | United States
Empire State Building | United States
Hoover Dam | United States
Yellowstone National Park | United States
Times Square | United States
White House | United States
Space Needle | United States
Gateway Arch | United States
Lincoln Memorial | United States
Alcatraz Island | United States
Hollywood Sign | United States
Brooklyn Bridge | United States
CN Tower | Canada
Banff National Park | Canada
Chateau Frontenac | Canada
Great Wall of China | China
Forbidden City | China
Terracotta Army | China
Temple of Heaven | China
Tiananmen Square | China
Leshan Giant Buddha | China
Taj Mahal | India
Red Fort | India
Qutub Minar | India
Gateway of India | India
Golden Temple | India
Hawa Mahal | India
Angkor Wat | Cambodia
Machu Picchu | Peru
Nazca Lines | Peru
Christ the Redeemer | Brazil
Chichen Itza | Mexico
Teotihuacan | Mexico
Pyramids of Giza | Egypt
Great Sphinx of Giza | Egypt
Abu Simbel | Egypt
Valley of the Kings | Egypt
Karnak | Egypt
Petra | Jordan
Burj Khalifa | United Arab Emirates
Burj Al Arab | United Arab Emirates
Sheikh Zayed Grand Mosque | United Arab Emirates
Sydney Opera House | Australia
Uluru | Australia
Great Barrier Reef | Australia
Sydney Harbour Bridge | Australia
Bondi Beach | Australia
Mount Fuji | Japan
Fushimi Inari Shrine | Japan
Tokyo Tower | Japan
Himeji Castle | Japan
Kinkaku-ji | Japan
Itsukushima Shrine | Japan
Hiroshima Peace Memorial | Japan
Parthenon | Greece
Acropolis of Athens | Greece
Meteora | Greece
Sagrada Familia | Spain
Alhambra | Spain
Park Guell | Spain
Guggenheim Museum Bilbao | Spain
Prado Museum | Spain
Neuschwanstein Castle | Germany
Brandenburg Gate | Germany
Cologne Cathedral | Germany
Reichstag Building | Germany
Chillon Castle | Switzerland
Jungfraujoch | Switzerland
Rhine Falls | Switzerland
Red Square | Russia
Saint Basil's Cathedral | Russia
Hermitage Museum | Russia
Lake Baikal | Russia
Hagia Sophia | Turkey
Cappadocia | Turkey
Pamukkale | Turkey
Ephesus | Turkey
Topkapi Palace | Turkey
Mount Ararat | Turkey
Charles Bridge | Czech Republic
Prague Castle | Czech Republic
Atomium | Belgium
Manneken Pis | Belgium
Anne Frank House | Netherlands
Rijksmuseum | Netherlands
Kinderdijk | Netherlands
Tivoli Gardens | Denmark
Geirangerfjord | Norway
Preikestolen | Norway
Vasa Museum | Sweden
Suomenlinna | Finland
Hallgrimskirkja | Iceland
Gullfoss | Iceland
Cliffs of Moher | Ireland
Newgrange | Ireland
Belem Tower | Portugal
Pena Palace | Portugal
Buda Castle | Hungary
Wieliczka Salt Mine | Poland
Wawel Castle | Poland
Bran Castle | Romania
Plitvice Lakes | Croatia
Diocletian's Palace | Croatia
Lake Bled | Slovenia
Stari Most | Bosnia and Herzegovina
Rila Monastery | Bulgaria
Petronas Towers | Malaysia
Marina Bay Sands | Singapore
Gardens by the Bay | Singapore
Borobudur | Indonesia
Prambanan | Indonesia
Ha Long Bay | Vietnam
Wat Arun | Thailand
Shwedagon Pagoda | Myanmar
Bagan | Myanmar
Gyeongbokgung | South Korea
Sigiriya | Sri Lanka
Mount Kilimanjaro | Tanzania
Serengeti National Park | Tanzania
Ngorongoro Crater | Tanzania
Table Mountain | South Africa
Robben Island | South Africa
Kruger National Park | South Africa
Great Mosque of Djenne | Mali
Lalibela | Ethiopia
Maasai Mara | Kenya
Hassan II Mosque | Morocco
Jemaa el-Fnaa | Morocco
Carthage | Tunisia
Leptis Magna | Libya
Okavango Delta | Botswana
Avenue of the Baobabs | Madagascar
Perito Moreno Glacier | Argentina
Easter Island | Chile
Torres del Paine | Chile
Galapagos Islands | Ecuador
Angel Falls | Venezuela
Salar de Uyuni | Bolivia
Tikal | Guatemala
Great Blue Hole | Belize
Milford Sound | New Zealand
Hobbiton | New Zealand
Kaaba | Saudi Arabia
Persepolis | Iran
Babylon | Iraq
Baalbek | Lebanon
Chocolate Hills | Philippines
Banaue Rice Terraces | Philippines
Boudhanath | Nepal
Paro Taktsang | Bhutan
Badshahi Mosque | Pakistan
Faisal Mosque | Pakistan
Moscow Kremlin | Russia
Wadi Rum | Jordan
Trolltunga | Norway
Kyiv Pechersk Lavra | Ukraine
Ostrog Monastery | Montenegro
Hagar Qim | Malta
Goree Island | Senegal
Ait Benhaddou | Morocco
Sossusvlei | Namibia
Bwindi Impenetrable Forest | Uganda
Las Lajas Sanctuary | Colombia
Arenal Volcano | Costa Rica
Cotopaxi | Ecuador
Flame Towers | Azerbaijan
Baiterek | Kazakhstan
Geghard Monastery | Armenia
Naqsh-e Jahan Square | Iran
N Seoul Tower | South Korea
Tanah Lot | Indonesia
"""

# ---------------------------------------------------------------------------
# Person -> occupation. One clear word per person, from a small vocabulary
# (OCCUPATIONS). People famous for two roles about equally were left out, e.g.
# Leonardo da Vinci, Michelangelo, Galileo, Marie Curie, Michael Faraday, Rene Descartes,
# Victor Hugo, Oscar Wilde, Anton Chekhov, Bob Dylan, Charlie Chaplin, Clint Eastwood,
# Orson Welles, Arnold Schwarzenegger, Benjamin Franklin, Karl Marx, William Blake,
# Isaac Newton (physicist/mathematician), Archimedes (mathematician/inventor),
# Samuel Morse (painter/inventor), Frank Sinatra (singer/actor).
# "actor" is used for actors of every gender.
# ---------------------------------------------------------------------------
PEOPLE = """
Albert Einstein | physicist
Stephen Hawking | physicist
Niels Bohr | physicist
Richard Feynman | physicist
Max Planck | physicist
Werner Heisenberg | physicist
Enrico Fermi | physicist
J. Robert Oppenheimer | physicist
James Clerk Maxwell | physicist
Ernest Rutherford | physicist
Dmitri Mendeleev | chemist
Antoine Lavoisier | chemist
Linus Pauling | chemist
Rosalind Franklin | chemist
Charles Darwin | biologist
Gregor Mendel | biologist
Carl Linnaeus | biologist
Euclid | mathematician
Carl Friedrich Gauss | mathematician
Leonhard Euler | mathematician
Srinivasa Ramanujan | mathematician
Pierre de Fermat | mathematician
Ada Lovelace | mathematician
Emmy Noether | mathematician
David Hilbert | mathematician
Bernhard Riemann | mathematician
Nicolaus Copernicus | astronomer
Johannes Kepler | astronomer
Edwin Hubble | astronomer
Carl Sagan | astronomer
Tycho Brahe | astronomer
Thomas Edison | inventor
Nikola Tesla | inventor
Alexander Graham Bell | inventor
Guglielmo Marconi | inventor
Johannes Gutenberg | inventor
Pablo Picasso | painter
Vincent van Gogh | painter
Claude Monet | painter
Rembrandt | painter
Frida Kahlo | painter
Johannes Vermeer | painter
Edvard Munch | painter
Gustav Klimt | painter
Henri Matisse | painter
Jackson Pollock | painter
Raphael | painter
Caravaggio | painter
Francisco Goya | painter
Sandro Botticelli | painter
Auguste Rodin | sculptor
Donatello | sculptor
Alberto Giacometti | sculptor
Henry Moore | sculptor
Ludwig van Beethoven | composer
Wolfgang Amadeus Mozart | composer
Johann Sebastian Bach | composer
Pyotr Ilyich Tchaikovsky | composer
Antonio Vivaldi | composer
Richard Wagner | composer
Johannes Brahms | composer
Franz Schubert | composer
George Frideric Handel | composer
Claude Debussy | composer
Giuseppe Verdi | composer
Giacomo Puccini | composer
Elvis Presley | singer
Whitney Houston | singer
Adele | singer
Taylor Swift | singer
Michael Jackson | singer
Madonna | singer
Freddie Mercury | singer
Aretha Franklin | singer
Ed Sheeran | singer
Rihanna | singer
Shakira | singer
Luciano Pavarotti | singer
Elton John | singer
Tom Hanks | actor
Meryl Streep | actor
Leonardo DiCaprio | actor
Marilyn Monroe | actor
Audrey Hepburn | actor
Humphrey Bogart | actor
Marlon Brando | actor
Robert De Niro | actor
Al Pacino | actor
Denzel Washington | actor
Brad Pitt | actor
Tom Cruise | actor
Morgan Freeman | actor
Jack Nicholson | actor
Steven Spielberg | director
Alfred Hitchcock | director
Stanley Kubrick | director
Martin Scorsese | director
Quentin Tarantino | director
Christopher Nolan | director
Akira Kurosawa | director
Francis Ford Coppola | director
Federico Fellini | director
Ingmar Bergman | director
James Cameron | director
Jane Austen | novelist
Charles Dickens | novelist
Leo Tolstoy | novelist
Fyodor Dostoevsky | novelist
Ernest Hemingway | novelist
George Orwell | novelist
Virginia Woolf | novelist
J. K. Rowling | novelist
Stephen King | novelist
Agatha Christie | novelist
F. Scott Fitzgerald | novelist
Toni Morrison | novelist
Miguel de Cervantes | novelist
Homer | poet
Dante Alighieri | poet
Emily Dickinson | poet
Walt Whitman | poet
Robert Frost | poet
John Keats | poet
Lord Byron | poet
William Wordsworth | poet
Pablo Neruda | poet
Rumi | poet
Alexander Pushkin | poet
Virgil | poet
William Shakespeare | playwright
Henrik Ibsen | playwright
Tennessee Williams | playwright
Arthur Miller | playwright
Sophocles | playwright
Euripides | playwright
George Bernard Shaw | playwright
Socrates | philosopher
Plato | philosopher
Aristotle | philosopher
Immanuel Kant | philosopher
Friedrich Nietzsche | philosopher
Confucius | philosopher
John Locke | philosopher
Thomas Hobbes | philosopher
Jean-Paul Sartre | philosopher
David Hume | philosopher
Baruch Spinoza | philosopher
Adam Smith | economist
John Maynard Keynes | economist
Milton Friedman | economist
Friedrich Hayek | economist
Winston Churchill | politician
Abraham Lincoln | politician
Barack Obama | politician
Margaret Thatcher | politician
Angela Merkel | politician
Franklin D. Roosevelt | politician
John F. Kennedy | politician
Otto von Bismarck | politician
Jawaharlal Nehru | politician
Christopher Columbus | explorer
Marco Polo | explorer
Ferdinand Magellan | explorer
Vasco da Gama | explorer
Roald Amundsen | explorer
James Cook | explorer
Ernest Shackleton | explorer
Leif Erikson | explorer
Ibn Battuta | explorer
Neil Armstrong | astronaut
Buzz Aldrin | astronaut
Yuri Gagarin | astronaut
Sally Ride | astronaut
Valentina Tereshkova | astronaut
Chris Hadfield | astronaut
Lionel Messi | footballer
Cristiano Ronaldo | footballer
Diego Maradona | footballer
Zinedine Zidane | footballer
Johan Cruyff | footballer
David Beckham | footballer
Ronaldinho | footballer
Neymar | footballer
Franz Beckenbauer | footballer
Mohamed Salah | footballer
Muhammad Ali | boxer
Mike Tyson | boxer
Floyd Mayweather | boxer
Manny Pacquiao | boxer
Joe Frazier | boxer
Tiger Woods | golfer
Jack Nicklaus | golfer
Arnold Palmer | golfer
Rory McIlroy | golfer
Michael Phelps | swimmer
Mark Spitz | swimmer
Katie Ledecky | swimmer
Ian Thorpe | swimmer
"""

OCCUPATIONS = {
    "physicist",
    "chemist",
    "biologist",
    "mathematician",
    "astronomer",
    "inventor",
    "painter",
    "sculptor",
    "composer",
    "singer",
    "actor",
    "director",
    "novelist",
    "poet",
    "playwright",
    "philosopher",
    "economist",
    "politician",
    "explorer",
    "astronaut",
    "footballer",
    "boxer",
    "golfer",
    "swimmer",
}

# ---------------------------------------------------------------------------
# Product -> company that makes it (as of 2025). The company is the maker/owner named
# as the brand's company in ordinary use. Left out: products whose maker changed or is
# changing hands around 2025 or is split by region (Kit Kat, Pringles, Corn Flakes,
# Kleenex, Ben & Jerry's, Lipton, Tylenol, Viagra, Lipitor, Roomba), discontinued
# products (Skype, Internet Explorer), brand-vs-parent cases (Corvette: Chevrolet or
# GM?, Wrangler: Jeep or Stellantis?, Instagram/WhatsApp/YouTube: acquired services),
# generic or ambiguous names (Golf, Galaxy, Echo, Word, Switch, Dove: Unilever soap or
# Mars chocolate, Uno: Mattel game or Fiat car), products sold by different companies in
# different markets (Cheerios: General Mills / Nestle joint venture outside North America),
# and products whose current marketer we could not confirm (Prozac, Cortana, Thunderbird).
# ---------------------------------------------------------------------------
PRODUCTS = """
iPhone | Apple
iPad | Apple
MacBook | Apple
iMac | Apple
AirPods | Apple
iPod | Apple
Macintosh | Apple
Siri | Apple
Safari | Apple
iOS | Apple
macOS | Apple
FaceTime | Apple
iMessage | Apple
Vision Pro | Apple
Windows | Microsoft
Xbox | Microsoft
Excel | Microsoft
PowerPoint | Microsoft
Outlook | Microsoft
Bing | Microsoft
Azure | Microsoft
Visual Studio | Microsoft
Android | Google
Chrome | Google
Gmail | Google
Pixel | Google
Kindle | Amazon
Alexa | Amazon
PlayStation | Sony
Walkman | Sony
Bravia | Sony
Cyber-shot | Sony
Game Boy | Nintendo
Wii | Nintendo
GameCube | Nintendo
ThinkPad | Lenovo
Pentium | Intel
Xeon | Intel
Celeron | Intel
Ryzen | AMD
Radeon | AMD
GeForce | Nvidia
Snapdragon | Qualcomm
Photoshop | Adobe
Illustrator | Adobe
Acrobat | Adobe
Premiere Pro | Adobe
AutoCAD | Autodesk
Firefox | Mozilla
ChatGPT | OpenAI
Claude | Anthropic
Fortnite | Epic Games
Unreal Engine | Epic Games
Steam | Valve
Half-Life | Valve
Grand Theft Auto | Rockstar Games
The Sims | Electronic Arts
Coolpix | Nikon
PowerShot | Canon
Mustang | Ford
F-150 | Ford
Bronco | Ford
Model T | Ford
Fiesta | Ford
Corolla | Toyota
Camry | Toyota
Prius | Toyota
RAV4 | Toyota
Land Cruiser | Toyota
Hilux | Toyota
Civic | Honda
Accord | Honda
CR-V | Honda
Beetle | Volkswagen
Passat | Volkswagen
Jetta | Volkswagen
Tiguan | Volkswagen
Model S | Tesla
Model 3 | Tesla
Model X | Tesla
Model Y | Tesla
Cybertruck | Tesla
Altima | Nissan
Qashqai | Nissan
GT-R | Nissan
Outback | Subaru
Impreza | Subaru
Forester | Subaru
Miata | Mazda
Elantra | Hyundai
Sportage | Kia
Clio | Renault
Twingo | Renault
Testarossa | Ferrari
Countach | Lamborghini
Aventador | Lamborghini
S-Class | Mercedes-Benz
Dreamliner | Boeing
A380 | Airbus
A320 | Airbus
F-35 | Lockheed Martin
Falcon 9 | SpaceX
Vespa | Piaggio
Jet Ski | Kawasaki
Submariner | Rolex
Speedmaster | Omega
Sprite | Coca-Cola
Fanta | Coca-Cola
Powerade | Coca-Cola
Dasani | Coca-Cola
Mountain Dew | PepsiCo
Gatorade | PepsiCo
Doritos | PepsiCo
Cheetos | PepsiCo
Snickers | Mars
Twix | Mars
M&M's | Mars
Nutella | Ferrero
Tic Tac | Ferrero
Big Mac | McDonald's
Happy Meal | McDonald's
Whopper | Burger King
Frappuccino | Starbucks
Barbie | Mattel
Hot Wheels | Mattel
Monopoly | Hasbro
Play-Doh | Hasbro
Nerf | Hasbro
Transformers | Hasbro
Pampers | Procter & Gamble
Tide | Procter & Gamble
Crest | Procter & Gamble
Pantene | Procter & Gamble
Febreze | Procter & Gamble
Oral-B | Procter & Gamble
Vaseline | Unilever
Hellmann's | Unilever
Axe | Unilever
Huggies | Kimberly-Clark
Post-it | 3M
Ozempic | Novo Nordisk
Wegovy | Novo Nordisk
Mounjaro | Eli Lilly
Humira | AbbVie
Keytruda | Merck
Guinness | Diageo
Johnnie Walker | Diageo
Smirnoff | Diageo
Absolut | Pernod Ricard
Jameson | Pernod Ricard
Jack Daniel's | Brown-Forman
Air Jordan | Nike
Air Max | Nike
Stan Smith | Adidas
"""


def parse_pairs(table):
    pairs = []
    for line in table.strip().splitlines():
        cells = [c.strip() for c in line.split("|")]
        assert len(cells) == 2 and all(cells), line
        pairs.append(tuple(cells))
    return pairs
