"""Stop words of the common languages of the ecosystem, for tag clouds and search.

Compact lists of function words (articles, pronouns, prepositions, auxiliaries,
conjunctions) plus a few words every forum uses; a term in any of these lists is
never a tag. The language whose stop words a text uses most picks its stemmer.
"""

from __future__ import annotations

_EN = """a about above after again against all also am an and any are as at be because been
before being below between both but by can could did do does doing done down during each
even few for from further get gets got had has have having he her here hers herself him
himself his how i if in into is it its itself just let like made make many may me might
more most much must my myself no nor not now of off on once only or other our ours
ourselves out over own per really same shall she should so some still such than that the
their theirs them themselves then there these they this those through to too under until up
upon us use used using very via was we well were what when where which while who whom why
will with within without would yet you your yours yourself yourselves anyone everyone
something anything nothing thing things one two three new way ways want need needs lot lots
good great thanks thank hi hello please re yes ok okay etc every ever never always often else
already another almost enough quite rather"""

_DE = """aber alle allem allen aller alles als also am an ander andere anderem anderen anderer
anderes auch auf aus bei bin bis bist da damit dann das dass dasselbe dazu dein deine
deinem deinen deiner dem den denn der des dessen die dies diese dieselbe diesem diesen
dieser dieses doch dort du durch ein eine einem einen einer eines einig einige er es etwas
euer eure für gegen gewesen hab habe haben hat hatte hatten hier hin hinter ich ihm ihn
ihnen ihr ihre ihrem ihren ihrer im in indem ins ist jede jedem jeden jeder jedes jene
jetzt kann kein keine können könnte machen man manche mein meine mich mir mit muss musste
nach nicht nichts noch nun nur ob oder ohne sehr sein seine sich sie sind so solche soll
sollte sondern sonst über um und uns unser unsere unter viel vom von vor war waren warst
was weg weil weiter welche wenn werde werden wie wieder will wir wird wirst wo wollen
wollte würde würden zu zum zur zwar zwischen danke hallo bitte"""

_FR = """a ai aie alors au aucun aussi autre aux avec avoir bon car ce cela ces cet cette ceux
chaque ci comme comment dans de des du donc dos elle elles en encore est et été être eu
fait faire fois ici il ils je la le les leur leurs lui ma mais me même mes moi mon ne ni
nos notre nous on ont ou où par pas peu peut plus pour pourquoi qu quand que quel quelle
quelles quels qui sa sans se ses si son sont sous sur ta te tes toi ton tous tout toute
toutes très tu un une vos votre vous vu ça merci bonjour"""

_ES = """a al algo algunas algunos ante antes como con contra cual cuando de del desde donde
durante e el ella ellas ellos en entre era es esa esas ese eso esos esta estaba estado
estas este esto estos fue fueron ha había han hasta hay la las le les lo los más me mi
mis mucho muy nada ni no nos nosotros o os otra otro para pero poco por porque que quien
se sea ser si sin sobre son su sus también tanto te tiene tienen todo todos tu tus un una
uno unos y ya yo gracias hola"""

_IT = """a ad al alla alle anche ancora avere che chi ci come con da dal dalla dei del della
delle di dove e è ed era gli ha hanno il in io la le lei lo loro ma mi mio ne nel nella
noi non o per più perché quale quando quello questa questo se si sono su sua suo tra tu
un una uno voi grazie ciao"""

_NL = """aan al alles als ben bij dat de der deze die dit doch doen door dus een en er geen
had heb hebben heeft het hier hij hoe hun ik in is ja je kan kon maar me meer men met mij
mijn moet na naar niet niets nog nu of om omdat ons ook op over te tegen toch toen tot u
uit van veel voor want was wat we wel werd wie wij wil worden zal ze zei zich zij zijn zo
zonder zou bedankt hallo"""

_PT = """a ao aos as até com como da das de dela dele do dos e é ela ele eles em entre era
essa esse esta este eu foi há isso isto já lhe mais mas me mesmo meu minha muito na não
nas nem no nos nós o os ou para pela pelo por qual quando que quem se sem ser seu sua são
também te tem um uma umas uns você obrigado olá"""

STOP_WORDS: dict[str, frozenset[str]] = {
    "english": frozenset(_EN.split()),
    "german": frozenset(_DE.split()),
    "french": frozenset(_FR.split()),
    "spanish": frozenset(_ES.split()),
    "italian": frozenset(_IT.split()),
    "dutch": frozenset(_NL.split()),
    "portuguese": frozenset(_PT.split()),
}
ALL_STOP_WORDS: frozenset[str] = frozenset().union(*STOP_WORDS.values())
