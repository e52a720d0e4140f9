#!/usr/bin/env python3
"""Static check of the project's Yocto layer (meta-<project>/).

BitBake is not packaged for the machines the tests run on, so this script reads the
layer with a parser of its own for BitBake's syntax (assignments and their operators,
overrides, flags, line continuations, inherit, include/require, shell and python
functions) and evaluates the variables it needs for the target, native and nativesdk
variants. It fails on what it cannot parse, on the old override syntax, on a recipe
without LICENSE, LIC_FILES_CHKSUM, SRC_URI or (for git) SRCREV, on a license checksum
that does not match the project's LICENSE, on a layer.conf without LAYERSERIES_COMPAT
or naming a release whose meson is too old, on DEPENDS that miss a library of
meson.build or name one it does not use, on meson options that meson_options.txt does
not have, on an 'auto' feature the recipe leaves to chance, and on a bmaptool switch
that is not opt-in.

Usage: check-layer.py [--no-self-test] SOURCE_ROOT

Before checking SOURCE_ROOT it proves that it can fail: it writes a small good layer
and broken copies of it to a temporary folder and requires each copy to fail.
"""
import fnmatch
import hashlib
import os
import re
import subprocess
import sys
import tempfile

# --- Facts about OpenEmbedded -------------------------------------------------------

# Release series: the meson version of its openembedded-core, and the native recipe
# its image classes run for the bmap conversion (CONVERSION_DEPENDS_bmap).
SERIES = {
    "kirkstone": ((0, 61, 3), "bmap-tools-native"),
    "langdale": ((0, 63, 3), "bmap-tools-native"),
    "mickledore": ((1, 0, 1), "bmap-tools-native"),
    "nanbield": ((1, 2, 2), "bmap-tools-native"),
    "scarthgap": ((1, 3, 1), "bmaptool-native"),
    "styhead": ((1, 5, 1), "bmaptool-native"),
    "walnascar": ((1, 7, 0), "bmaptool-native"),
    "whinlatter": ((1, 9, 1), "bmaptool-native"),
    "wrynose": ((1, 10, 2), "bmaptool-native"),
}

# What meson.build asks for (dependency() or find_library() name) and the recipe that
# provides it; None: nothing to build (part of the C library).
DEP_RECIPES = {
    "expat": "expat",
    "libcrypto": "openssl",
    "libisal": "isa-l",
    "zlib": "zlib",
    "bz2": "bzip2",
    "liblzma": "xz",
    "libzstd": "zstd",
    "liblz4": "lz4",
    "libxxhash": "xxhash",
    "lzo2": "lzo",
    "libarchive": "libarchive",
    "gpgme": "gpgme",
    "libnbd": "libnbd",
    "libcurl": "curl",
    "cmocka": "cmocka",
    "udev": "udev",
    "bash-completion": "bash-completion",
    "threads": None,
    "dl": None,
}

# Classes that add a recipe to DEPENDS of the target variant.
CLASS_DEPENDS = {"bash-completion": "bash-completion"}

# A lookup with required : false that meson.build makes only while an option is empty:
# setting the option in EXTRA_OEMESON takes the library out of the build.
AVOIDED_BY_OPTION = {"udev": "udevrulesdir"}

# Meson's own options, which meson_options.txt does not list.
MESON_BUILTIN = {"werror", "warning_level", "default_library", "buildtype",
                 "optimization", "debug", "strip", "c_std", "auto_features",
                 "wrap_mode", "prefer_static", "unity"}

# Space-separated list variables: an :append to them must start with a space.
LIST_VARS = {"DEPENDS", "RDEPENDS", "RRECOMMENDS", "RSUGGESTS", "RPROVIDES",
             "RCONFLICTS", "RREPLACES", "PROVIDES", "SRC_URI", "EXTRA_OEMESON",
             "EXTRA_OECONF", "EXTRA_OECMAKE", "EXTRA_OEMAKE", "PACKAGECONFIG",
             "BBCLASSEXTEND", "FILES", "PACKAGES", "IMAGE_INSTALL", "IMAGE_FSTYPES",
             "DISTRO_FEATURES", "MACHINE_FEATURES", "INHERIT", "BBFILES",
             "BBFILE_COLLECTIONS", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS",
             "HOST_CC_ARCH", "TARGET_CC_ARCH", "WKS_FILE_DEPENDS"}
LIST_PREFIXES = ("LAYERDEPENDS_", "LAYERRECOMMENDS_", "LAYERSERIES_COMPAT_",
                 "CONVERSION_DEPENDS_")

# --- BitBake syntax -----------------------------------------------------------------

NAME_CHARS = r"[A-Za-z0-9_\-+.${}/~:]"
ASSIGN = re.compile(r"(?P<export>export[ \t]+)?(?P<name>" + NAME_CHARS + r"+?)"
                    r"(?:\[(?P<flag>[A-Za-z0-9_\-+.][A-Za-z0-9_\-+.@/]*)\])?"
                    r"(?P<ws1>[ \t]*)(?P<op>\?\?=|\?=|:=|\+=|=\+|\.=|=\.|=)"
                    r"(?P<ws2>[ \t]*)(?P<rest>.*)$")
FUNC_START = re.compile(r"(?:(?:python(?=[ \t(])|fakeroot(?=[ \t]))[ \t]*)*"
                        r"(?P<name>[\w.\-+{}$:]+)?[ \t]*\([ \t]*\)[ \t]*\{$")
PY_START = re.compile(r"python(?=[ \t(])")
DEF_START = re.compile(r"def[ \t]+(\w+)[ \t]*\(.*\)[ \t]*:")
DIRECTIVE = re.compile(r"(include_all|include|require|inherit_defer|inherit|addtask|"
                       r"deltask|addhandler|EXPORT_FUNCTIONS|addpylib|addfragments|"
                       r"export|unset)[ \t]+(\S.*)$")
CONF_DIRECTIVES = {"include", "require", "include_all", "export", "unset", "addpylib",
                   "addfragments"}
KEYWORDS = ("append", "prepend", "remove")
PER_PACKAGE = ("RDEPENDS", "RRECOMMENDS", "RSUGGESTS", "RPROVIDES", "RCONFLICTS",
               "RREPLACES", "FILES", "ALLOW_EMPTY", "INSANE_SKIP", "CONFFILES", "PKG",
               "SUMMARY", "DESCRIPTION", "SECTION", "LICENSE", "ALTERNATIVE",
               "SYSTEMD_SERVICE", "SYSTEMD_AUTO_ENABLE", "INITSCRIPT_NAME",
               "INITSCRIPT_PARAMS", "USERADD_PARAM", "GROUPADD_PARAM", "pkg_postinst",
               "pkg_preinst", "pkg_postrm", "pkg_prerm")
OLD_OVERRIDE = re.compile(r"_(append|prepend|remove)(?![A-Za-z0-9])|"
                          r"^(?:" + "|".join(PER_PACKAGE) + r")_\$\{PN\}|"
                          r"_class-(target|native|nativesdk|cross)|_pn-|_virtclass-")


class Stmt:
    """One statement: an assignment, a directive or a function."""

    def __init__(self, path, line, kind, **kw):
        self.path, self.line, self.kind = path, line, kind
        self.name = kw.get("name")
        self.flag = kw.get("flag")
        self.op = kw.get("op")
        self.value = kw.get("value")
        self.arg = kw.get("arg")
        self.python = kw.get("python", False)


def old_override(name, where, problems):
    m = OLD_OVERRIDE.search(name)
    if m:
        problems.append("%s: old override syntax in '%s': overrides and :append, "
                        ":prepend, :remove are joined with ':', not '_'" % (where, name))


def parse_text(text, path, conf, problems):
    """Statements of one file; every line BitBake would refuse goes to problems."""
    stmts = []
    lines = text.split("\n")
    func = None          # (name, python, start line, body) while inside { ... }
    pydef = None         # start line while inside a def block
    pending = []         # pieces of a line continued with a backslash
    pending_line = 0
    for i, raw in enumerate(lines, 1):
        s = raw.rstrip()
        where = "%s:%d" % (path, i)
        if func is not None:
            if s == "}":
                stmts.append(Stmt(path, func[2], "func", name=func[0], python=func[1],
                                  value="\n".join(func[3])))
                func = None
            else:
                func[3].append(s)
            continue
        if pydef is not None:
            if s == "" or s[0] in " \t" or s.startswith("#"):
                continue
            pydef = None
        if pending and pending[0].startswith("#"):
            # A comment ending in a backslash continues, and BitBake only accepts that
            # when the continued lines are comments too.
            if not s.startswith("#"):
                problems.append("%s: line continues the comment of line %d; is it a "
                                "comment or not?" % (where, pending_line))
                pending = []
                continue
            if s.endswith("\\"):
                continue
            pending = []
            continue
        if pending:
            if s.startswith("#"):
                problems.append("%s: comment inside a statement continued from line %d"
                                % (where, pending_line))
                pending = []
                continue
            if s == "":
                problems.append("%s: empty line ends the statement continued from line %d"
                                % (where, pending_line))
                pending = []
                continue
        if s.endswith("\\"):
            if not pending:
                pending_line = i
            pending.append(s[:-1])
            continue
        if pending:
            s = "".join(pending) + s
            where = "%s:%d" % (path, pending_line)
            start = pending_line
            pending = []
        else:
            start = i
        if s.strip() == "" or s.startswith("#"):
            continue
        if s[0] in " \t":
            problems.append("%s: cannot parse an indented statement: '%s'"
                            % (where, s.strip()))
            continue
        m = FUNC_START.match(s)
        if m:
            if conf:
                problems.append("%s: function in a configuration file" % where)
            name = m.group("name") or "__anonymous"
            old_override(name, where, problems)
            func = (name, PY_START.match(s) is not None, start, [])
            continue
        m = DEF_START.match(s)
        if m:
            if conf:
                problems.append("%s: python def in a configuration file" % where)
            pydef = start
            stmts.append(Stmt(path, start, "def", name=m.group(1)))
            continue
        m = ASSIGN.match(s)
        if m:
            stmt = parse_assignment(m, where, path, start, problems)
            if stmt:
                stmts.append(stmt)
            continue
        m = DIRECTIVE.match(s)
        if m:
            word, arg = m.group(1), m.group(2).strip()
            if conf and word not in CONF_DIRECTIVES:
                problems.append("%s: '%s' is not allowed in a configuration file"
                                % (where, word))
                continue
            if word in ("export", "unset"):
                if not re.fullmatch(r"[A-Za-z0-9_\-+.${}/~]+(\[[A-Za-z0-9_\-+.@]+\])?", arg):
                    problems.append("%s: cannot parse: '%s'" % (where, s))
                    continue
                old_override(arg, where, problems)
            stmts.append(Stmt(path, start, word, arg=arg))
            continue
        problems.append("%s: cannot parse: '%s'" % (where, s))
    if pending:
        problems.append("%s:%d: the file ends inside a continued statement"
                        % (path, pending_line))
    if func is not None:
        problems.append("%s:%d: function '%s' is not closed by a line holding only '}'"
                        % (path, func[2], func[0]))
    return stmts


def parse_assignment(m, where, path, line, problems):
    name, rest = m.group("name"), m.group("rest")
    if not m.group("ws1") or not m.group("ws2"):
        problems.append("%s: put spaces around '%s'" % (where, m.group("op")))
    if len(rest) < 2 or rest[0] not in "\"'" or rest[-1] != rest[0]:
        problems.append("%s: value of %s is not quoted from start to end of line"
                        % (where, name))
        return None
    quote, value = rest[0], rest[1:-1]
    if value.count(quote) == 1:
        # BitBake refuses a value with exactly three quotes of its kind.
        problems.append("%s: value of %s holds a stray %s" % (where, name, quote))
        return None
    old_override(name, where, problems)
    parts = name.split(":")
    for kw in KEYWORDS:
        if kw in parts[1:]:
            base = parts[0]
            if base in LIST_VARS or base.startswith(LIST_PREFIXES):
                if kw == "append" and value and not value[0].isspace() and \
                        not value.startswith("${"):
                    problems.append("%s: %s:append must start with a space, or it glues "
                                    "onto the last word" % (where, base))
                if kw == "prepend" and value and not value[-1].isspace() and \
                        not value.endswith("}"):
                    problems.append("%s: %s:prepend must end with a space" % (where, base))
    if "" in parts:
        problems.append("%s: empty override in '%s'" % (where, name))
    return Stmt(path, line, "assign", name=name, flag=m.group("flag"),
                op=m.group("op"), value=value)


def parse_file(path, conf, problems, display):
    with open(path, encoding="utf-8") as f:
        return parse_text(f.read(), display, conf, problems)


# --- Evaluation ---------------------------------------------------------------------

VAR_REF = re.compile(r"\$\{([A-Za-z0-9_\-+./~:]+)\}")


class _Utils:
    @staticmethod
    def contains(var, checkvalues, truevalue, falsevalue, d):
        have = set((d.getVar(var) or "").split())
        want = set(checkvalues.split()) if isinstance(checkvalues, str) else set(checkvalues)
        return truevalue if want <= have else falsevalue

    @staticmethod
    def filter(var, checkvalues, d):
        have = set((d.getVar(var) or "").split())
        return " ".join(v for v in checkvalues.split() if v in have)


class _BB:
    utils = _Utils


class Model:
    """Variables of one recipe variant, evaluated the way BitBake does (in short)."""

    def __init__(self, stmts, preset, active):
        self.active = set(active)
        self.order = 0
        self.vals = {}       # key -> (order, value)
        self.weak = {}       # key -> (order, value)
        self.ops = []        # (order, base key, keyword, conditions, value)
        self.flags = {}      # (key, flag) -> value
        self.inherits = []
        self.opaque = []     # inline python it could not evaluate
        for k, v in preset.items():
            self._set(k, v)
        for st in stmts:
            if st.kind == "assign":
                self._assign(st)
            elif st.kind in ("inherit", "inherit_defer"):
                self.inherits += self.expand(st.arg).split()

    def _set(self, key, value):
        self.order += 1
        self.vals[key] = (self.order, value)

    def _assign(self, st):
        name = self.expand(st.name)
        parts = name.split(":")
        kw = next((p for p in parts[1:] if p in KEYWORDS), None)
        if st.flag:
            cur = self.flags.get((name, st.flag))
            self.flags[(name, st.flag)] = self._combine(st.op, cur, st.value)
            return
        if kw:
            at = parts.index(kw, 1)
            self.order += 1
            self.ops.append((self.order, ":".join(parts[:at]), kw, set(parts[at + 1:]),
                             st.value))
            return
        cur = self.vals.get(name, (0, None))[1]
        if st.op == "??=":
            self.order += 1
            self.weak[name] = (self.order, st.value)
        elif st.op == "?=":
            if cur is None:
                self._set(name, st.value)
        else:
            value = st.value
            if st.op == ":=":
                value = self.expand(value)
            self._set(name, self._combine(st.op, cur, value))

    @staticmethod
    def _combine(op, cur, value):
        cur = cur or ""
        if op == "+=":
            return (cur + " " + value) if cur else value
        if op == "=+":
            return (value + " " + cur) if cur else value
        if op == ".=":
            return cur + value
        if op == "=.":
            return value + cur
        if op == "?=" and cur:
            return cur
        return value

    def raw(self, key):
        """Unexpanded value of KEY with the active overrides, appends and removes."""
        best = None
        for store in (self.weak, self.vals):
            for k, (order, value) in store.items():
                if k == key:
                    cand = (0 if store is self.weak else 1, 0, order, k, value)
                elif k.startswith(key + ":"):
                    conds = k[len(key) + 1:].split(":")
                    if not all(c in self.active for c in conds):
                        continue
                    cand = (2, len(conds), order, k, value)
                else:
                    continue
                if best is None or cand[:3] > best[:3]:
                    best = cand
        if best is None and not any(op[1] == key for op in self.ops):
            return None
        chosen = best[3] if best else key
        value = best[4] if best else ""
        removes = []
        for order, base, kw, conds, v in sorted(self.ops, key=lambda o: o[0]):
            if base not in (key, chosen) or not conds <= self.active:
                continue
            if kw == "append":
                value += v
            elif kw == "prepend":
                value = v + value
            else:
                removes += v.split()
        if removes:
            gone = set(self.expand(" ".join(removes)).split())
            value = " ".join(w for w in value.split() if self.expand(w) not in gone)
        return value

    def get(self, key, expand=True):
        value = self.raw(key)
        if value is None or not expand:
            return value
        return self.expand(value)

    def words(self, key):
        """Words of KEY that did not come out of something it could not evaluate."""
        return [w for w in (self.get(key) or "").split() if "${" not in w]

    def expand(self, s, depth=0):
        if s is None or "${" not in s or depth > 20:
            return s
        out = VAR_REF.sub(lambda m: self._ref(m.group(1), depth), s)
        out = self._python(out)
        return out if out == s else self.expand(out, depth + 1)

    def _ref(self, name, depth):
        value = self.raw(name)
        if value is None:
            return "${%s}" % name
        return self.expand(value, depth + 1)

    def _python(self, s):
        """S with each ${@...} replaced by its value, when it can be evaluated here."""
        out, i = [], 0
        while True:
            j = s.find("${@", i)
            if j < 0:
                out.append(s[i:])
                return "".join(out)
            level, k = 0, j + 2
            while k < len(s):
                if s[k] == "{":
                    level += 1
                elif s[k] == "}":
                    if level == 0:
                        break
                    level -= 1
                k += 1
            code = s[j + 3:k]
            out.append(s[i:j])
            if "${" in VAR_REF.sub("", code):
                out.append(s[j:k + 1])
            else:
                out.append(self._eval(code, s[j:k + 1]))
            i = k + 1

    def _eval(self, code, text):
        model = self

        class D:
            def getVar(self, name, expand=True):
                return model.get(name) if expand else model.raw(name)

        try:
            value = eval(code, {"__builtins__": {}, "d": D(), "bb": _BB}, {})
        except Exception:
            self.opaque.append(text)
            return text
        return "" if value is None else str(value)


# --- Meson --------------------------------------------------------------------------

def strip_meson_comments(text):
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("'''", i):
            j = text.find("'''", i + 3)
            j = n if j < 0 else j + 3
            out.append(text[i:j])
            i = j
        elif c == "'":
            j = i + 1
            while j < n and text[j] != "'" and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def meson_calls(text, func):
    """Argument text of every FUNC( ... ) call in TEXT (comments removed)."""
    calls = []
    for m in re.finditer(r"(?<![\w.])" + re.escape(func) + r"\s*\(|\.\s*" +
                         re.escape(func) + r"\s*\(", text):
        level, k, quoted = 0, m.end(), False
        while k < len(text):
            c = text[k]
            if c == "'":
                quoted = not quoted
            elif not quoted and c == "(":
                level += 1
            elif not quoted and c == ")":
                if level == 0:
                    break
                level -= 1
            k += 1
        calls.append(text[m.end():k])
    return calls


def first_string(args):
    m = re.match(r"\s*'([^']*)'", args)
    return m.group(1) if m else None


def kwarg(args, key):
    m = re.search(r"(?<!\w)" + key + r"\s*:\s*('[^']*'|\[[^\]]*\]|[\w.]+\([^)]*\)|\w+)",
                  args)
    return m.group(1) if m else None


def unquote(s):
    return s[1:-1] if s and s.startswith("'") and s.endswith("'") else s


def read_meson(root, skipped_dirs, problems):
    """Project facts and the libraries meson.build files reached by subdir() ask for."""
    facts = {"deps": []}
    path = os.path.join(root, "meson.build")
    if not os.path.exists(path):
        problems.append("%s: missing" % path)
        return facts
    todo, seen = [""], set()
    while todo:
        sub = todo.pop()
        if sub in seen:
            continue
        seen.add(sub)
        mpath = os.path.join(root, sub, "meson.build")
        if not os.path.exists(mpath):
            continue
        rel = os.path.relpath(mpath, root)
        with open(mpath, encoding="utf-8") as f:
            text = strip_meson_comments(f.read())
        if sub == "":
            proj = meson_calls(text, "project")
            if proj:
                facts["name"] = first_string(proj[0])
                facts["version"] = unquote(kwarg(proj[0], "version"))
                facts["license"] = unquote(kwarg(proj[0], "license"))
                facts["meson_version"] = unquote(kwarg(proj[0], "meson_version"))
        for func in ("dependency", "find_library"):
            for args in meson_calls(text, func):
                name = first_string(args)
                if name is None:
                    continue
                req = kwarg(args, "required") or "true"
                opt = re.fullmatch(r"get_option\('([^']+)'\)", req)
                facts["deps"].append((rel, name, opt.group(1) if opt else req))
        for args in meson_calls(text, "subdir"):
            name = first_string(args)
            if name and name.split("/")[0] not in skipped_dirs:
                todo.append(os.path.join(sub, name))
    return facts


def read_meson_options(root, problems):
    options = {}
    for name in ("meson_options.txt", "meson.options"):
        path = os.path.join(root, name)
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            text = strip_meson_comments(f.read())
        for args in meson_calls(text, "option"):
            oname = first_string(args)
            otype = unquote(kwarg(args, "type"))
            value = kwarg(args, "value")
            choices = kwarg(args, "choices")
            options[oname] = {
                "type": otype,
                "value": unquote(value) if value else None,
                "choices": re.findall(r"'([^']*)'", choices or ""),
            }
    if not options:
        problems.append("%s: no meson_options.txt with options" % root)
    return options


def version_tuple(text):
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


# --- The checks ---------------------------------------------------------------------

def metadata_files(layer):
    """(path, is configuration) of the BitBake files of LAYER. A .conf counts only under
    conf/, an .inc only under conf/, a classes folder or next to a recipe: elsewhere
    they are files that recipes install, in syntaxes of their own."""
    out = []
    for base, dirs, names in os.walk(layer):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = os.path.relpath(base, layer).split(os.sep)
        in_conf = rel[0] == "conf"
        in_classes = rel[0].startswith("classes")
        has_recipe = any(n.endswith((".bb", ".bbappend")) for n in names)
        for n in sorted(names):
            path = os.path.join(base, n)
            if n.endswith((".bb", ".bbappend", ".bbclass")):
                out.append((path, False))
            elif n.endswith(".conf") and in_conf:
                out.append((path, True))
            elif n.endswith(".inc") and (in_conf or in_classes or has_recipe):
                # BitBake reads an .inc with the recipe parser, even from a .conf.
                out.append((path, False))
    return out


def check_meson_args(args, options, where, problems):
    """Every -Dname=value in ARGS names an option meson knows, with a valid value."""
    for m in re.finditer(r"(?<!\S)-D([A-Za-z0-9_.\-:]+)(?:=(\S*))?", args):
        name, value = m.group(1), m.group(2)
        if value is None:
            problems.append("%s: -D%s has no value" % (where, name))
            continue
        if name in MESON_BUILTIN or name.startswith("b_"):
            continue
        opt = options.get(name)
        if opt is None:
            problems.append("%s: -D%s: meson_options.txt has no option '%s'"
                            % (where, name, name))
            continue
        ok = {"feature": ["enabled", "disabled", "auto"],
              "boolean": ["true", "false"],
              "combo": opt["choices"]}.get(opt["type"])
        if ok is not None and value not in ok:
            problems.append("%s: -D%s=%s: the %s option takes %s"
                            % (where, name, value, opt["type"], "/".join(ok)))


def packageconfig_flags(model, where, problems):
    flags = {}
    for (key, flag), value in model.flags.items():
        if key != "PACKAGECONFIG":
            continue
        fields = [f.strip() for f in value.split(",")]
        if len(fields) > 6:
            problems.append("%s: PACKAGECONFIG[%s] has %d fields, at most 6"
                            % (where, flag, len(fields)))
        fields += [""] * (6 - len(fields))
        flags[flag] = fields
    return flags


def check_layer_conf(layer, rel_layer, stmts_of, facts, recipes, problems):
    conf = os.path.join(layer, "conf", "layer.conf")
    disp = os.path.join(rel_layer, "conf", "layer.conf")
    if conf not in stmts_of:
        problems.append("%s: missing" % disp)
        return
    model = Model(stmts_of[conf], {"LAYERDIR": layer}, [])
    names = model.words("BBFILE_COLLECTIONS")
    if len(names) != 1:
        problems.append("%s: BBFILE_COLLECTIONS must add one collection name, not %r"
                        % (disp, names))
        return
    coll = names[0]
    for var in ("BBFILE_PATTERN_", "BBFILE_PRIORITY_", "LAYERDEPENDS_"):
        if not model.get(var + coll):
            problems.append("%s: %s%s is not set" % (disp, var, coll))
    prio = model.get("BBFILE_PRIORITY_" + coll) or ""
    if prio and not re.fullmatch(r"[1-9][0-9]?", prio):
        problems.append("%s: BBFILE_PRIORITY_%s must be a number from 1 to 99, not %r"
                        % (disp, coll, prio))
    if "core" not in model.words("LAYERDEPENDS_" + coll):
        problems.append("%s: LAYERDEPENDS_%s must name core" % (disp, coll))
    series = model.words("LAYERSERIES_COMPAT_" + coll)
    if not series:
        problems.append("%s: LAYERSERIES_COMPAT_%s is missing or empty: name the "
                        "releases the layer works with" % (disp, coll))
    need = version_tuple(facts.get("meson_version") or "0")
    for s in series:
        if s not in SERIES:
            problems.append("%s: LAYERSERIES_COMPAT_%s: unknown release '%s' (add it to "
                            "SERIES in tests/yocto/check-layer.py)" % (disp, coll, s))
            continue
        meson, bmap_native = SERIES[s]
        if need and meson < need:
            problems.append("%s: LAYERSERIES_COMPAT_%s names %s, whose meson %s is older "
                            "than meson.build's '%s'" % (disp, coll, s,
                                                        ".".join(map(str, meson)),
                                                        facts.get("meson_version")))
        if bmap_native != "bmaptool-native":
            problems.append("%s: LAYERSERIES_COMPAT_%s names %s, whose image classes run "
                            "%s, not the bmaptool-native this layer provides"
                            % (disp, coll, s, bmap_native))
    globs = model.words("BBFILES")
    for r in recipes:
        if not any(fnmatch.fnmatch(r, g) for g in globs):
            problems.append("%s: BBFILES does not match %s, so BitBake never reads it"
                            % (disp, os.path.relpath(r, os.path.dirname(layer))))


def lic_md5(path, params):
    with open(path, "rb") as f:
        data = f.read()
    begin, end = params.get("beginline"), params.get("endline")
    if begin or end:
        lines = data.splitlines(keepends=True)
        data = b"".join(lines[int(begin or 1) - 1:int(end) if end else None])
    return hashlib.md5(data).hexdigest()


def check_recipe(root, path, stmts, facts, options, own_recipes, problems):
    disp = os.path.relpath(path, root)
    base = os.path.basename(path)
    pn = base.split("_")[0].rsplit(".", 1)[0]
    is_project = pn == facts.get("name")
    target = Model(stmts, {"PN": pn, "BPN": pn}, ["class-target", "pn-" + pn])

    for var in ("LICENSE", "LIC_FILES_CHKSUM", "SRC_URI"):
        if not (target.get(var) or "").strip():
            problems.append("%s: %s is not set" % (disp, var))
    src = target.get("SRC_URI") or ""
    for uri in src.split():
        if uri.startswith("git://") or uri.startswith("gitsm://"):
            params = dict(p.split("=", 1) for p in uri.split(";")[1:] if "=" in p)
            if "protocol" not in params:
                problems.append("%s: git URI without protocol=: %s" % (disp, uri))
            if "branch" not in params and params.get("nobranch") != "1":
                problems.append("%s: git URI without branch= (or nobranch=1): %s"
                                % (disp, uri))
            rev = target.get("SRCREV") or ""
            if not (re.fullmatch(r"[0-9a-f]{40}", rev) or rev == "${AUTOREV}"):
                problems.append("%s: git SRC_URI needs SRCREV set to a full commit hash, "
                                "not %r" % (disp, rev))
    for entry in (target.get("LIC_FILES_CHKSUM") or "").split():
        m = re.fullmatch(r"file://([^;]+)((?:;[a-z0-9]+=[^;]*)*)", entry)
        params = dict(p.split("=", 1) for p in (m.group(2)[1:].split(";") if m and
                                                  m.group(2) else []))
        if not m or not re.fullmatch(r"[0-9a-f]{32}", params.get("md5", "")):
            problems.append("%s: LIC_FILES_CHKSUM entry is not file://PATH;md5=HASH: %s"
                            % (disp, entry))
            continue
        if is_project:
            lic = os.path.join(root, m.group(1))
            if not os.path.exists(lic):
                problems.append("%s: LIC_FILES_CHKSUM names %s, which the project does "
                                "not have" % (disp, m.group(1)))
            elif lic_md5(lic, params) != params["md5"]:
                problems.append("%s: LIC_FILES_CHKSUM md5 of %s is %s, the file's is %s"
                                % (disp, m.group(1), params["md5"], lic_md5(lic, params)))
    if not is_project:
        return target

    # The recipe that builds the project itself.
    if facts.get("license") and target.get("LICENSE") and \
            target.get("LICENSE") != facts["license"]:
        problems.append("%s: LICENSE is %r, meson.build says %r"
                        % (disp, target.get("LICENSE"), facts["license"]))
    pv = target.get("PV") or ""
    if facts.get("version") and not re.match(re.escape(facts["version"]) + r"(\+|$)", pv):
        problems.append("%s: PV %r does not start with the project's version %s"
                        % (disp, pv, facts["version"]))
    if re.search(r"git://", src):
        def weak(var):
            """VAR is set with ?= or ??=, or is just a reference to such a variable."""
            if any(st.kind == "assign" and st.name == var and st.op in ("?=", "??=")
                   for st in stmts):
                return True
            ref = re.fullmatch(r"\$\{([A-Za-z0-9_]+)\}", target.get(var, expand=False) or "")
            return bool(ref) and ref.group(1) != var and weak(ref.group(1))
        raw = target.get("SRC_URI", expand=False) or ""
        ref = re.match(r"\$\{([A-Za-z0-9_]+)\}", raw)
        if not ref or not weak(ref.group(1)):
            problems.append("%s: the git URI must come from a variable set with ?= so "
                            "local.conf can point elsewhere" % disp)
        if not weak("SRCREV"):
            problems.append("%s: set SRCREV with ?= (or from a variable set so) for "
                            "local.conf to choose the commit" % disp)
    for cls in ("meson", "pkgconfig"):
        if cls not in target.inherits:
            problems.append("%s: does not inherit %s" % (disp, cls))
    ext = target.words("BBCLASSEXTEND")
    for variant in ("native", "nativesdk"):
        if variant not in ext:
            problems.append("%s: BBCLASSEXTEND must name %s (it is %r)"
                            % (disp, variant, " ".join(ext)))
    depends = target.words("DEPENDS")
    if not depends:
        problems.append("%s: DEPENDS names nothing, yet meson.build needs libraries" % disp)

    oemeson = target.get("EXTRA_OEMESON") or ""
    check_meson_args(oemeson, options, disp + ": EXTRA_OEMESON", problems)
    pcflags = packageconfig_flags(target, disp, problems)
    for flag, fields in sorted(pcflags.items()):
        check_meson_args(fields[0] + " " + fields[1], options,
                         "%s: PACKAGECONFIG[%s]" % (disp, flag), problems)
    for d in ("tests", "fuzz"):
        if d in options and "-D%s=disabled" % d not in oemeson.split():
            problems.append("%s: EXTRA_OEMESON must hold -D%s=disabled" % (disp, d))

    # An 'auto' feature finds or misses a library by what happens to be in the sysroot.
    def pinned(opt):
        if re.search(r"(?<!\S)-D%s=" % re.escape(opt), oemeson):
            return True
        return any(re.search(r"(?<!\S)-D%s=" % re.escape(opt), f[0]) and
                   re.search(r"(?<!\S)-D%s=" % re.escape(opt), f[1])
                   for f in pcflags.values())
    for opt, o in sorted(options.items()):
        if o["type"] == "feature" and o["value"] in (None, "auto") and not pinned(opt):
            problems.append("%s: meson option '%s' is 'auto': set it in EXTRA_OEMESON or "
                            "by a PACKAGECONFIG with both -D%s=enabled and disabled"
                            % (disp, opt, opt))

    # meson.build's libraries against DEPENDS and PACKAGECONFIG.
    class_deps = {CLASS_DEPENDS[c] for c in target.inherits if c in CLASS_DEPENDS}
    pc_deps = {}
    for flag, fields in pcflags.items():
        for w in fields[2].split():
            pc_deps.setdefault(w, []).append(flag)
    needed = set()
    for rel, name, req in facts["deps"]:
        if name not in DEP_RECIPES:
            problems.append("%s: dependency '%s' has no recipe in DEP_RECIPES of "
                            "tests/yocto/check-layer.py" % (rel, name))
            continue
        recipe = DEP_RECIPES[name]
        if recipe is None:
            continue
        needed.add(recipe)
        if recipe in depends or recipe in class_deps:
            continue
        avoid = AVOIDED_BY_OPTION.get(name)
        if avoid and re.search(r"(?<!\S)-D%s=\S" % re.escape(avoid), oemeson):
            continue
        if req in options:
            if "-D%s=disabled" % req in oemeson.split():
                continue
            flag_ok = any(recipe in pcflags[f][2].split() and
                          "-D%s=enabled" % req in pcflags[f][0].split()
                          for f in pcflags)
            if flag_ok:
                continue
            problems.append("%s: '%s' (option %s) needs recipe %s in DEPENDS or in a "
                            "PACKAGECONFIG that sets -D%s=enabled"
                            % (rel, name, req, recipe, req))
        elif req == "false":
            problems.append("%s: '%s' is looked up with required : false, so the build "
                            "depends on what the sysroot happens to hold: put %s in "
                            "DEPENDS of %s%s" % (rel, name, recipe, disp,
                                                 " or set -D%s" % avoid if avoid else ""))
        else:
            problems.append("%s: meson.build needs '%s', but DEPENDS of %s lacks %s"
                            % (rel, name, disp, recipe))
    for w in depends + sorted(pc_deps):
        if w not in needed and not w.endswith("-native"):
            problems.append("%s: DEPENDS or PACKAGECONFIG names %s, which no dependency() "
                            "of meson.build needs" % (disp, w))
    for w in depends:
        if w in own_recipes:
            ext2 = own_recipes[w].words("BBCLASSEXTEND")
            for variant in ("native", "nativesdk"):
                if variant not in ext2:
                    user = pn + "-native" if variant == "native" else "nativesdk-" + pn
                    problems.append("%s: %s comes from this layer but does not extend to "
                                    "%s, which %s needs" % (disp, w, variant, user))

    for word in target.words("PACKAGECONFIG"):
        if word not in pcflags:
            problems.append("%s: PACKAGECONFIG enables '%s', which has no "
                            "PACKAGECONFIG[%s]" % (disp, word, word))
    for variant, active in (("native", ["class-native"]),
                            ("nativesdk", ["class-nativesdk"])):
        vpn = pn + "-native" if variant == "native" else "nativesdk-" + pn
        m = Model(stmts, {"PN": vpn, "BPN": pn}, active + ["pn-" + vpn])
        if m.get("EXTRA_OEMESON") != oemeson:
            check_meson_args(m.get("EXTRA_OEMESON") or "", options,
                             "%s (%s): EXTRA_OEMESON" % (disp, variant), problems)
        for word in m.words("PACKAGECONFIG"):
            if word not in pcflags:
                problems.append("%s (%s): PACKAGECONFIG enables '%s', which has no "
                                "PACKAGECONFIG[%s]" % (disp, variant, word, word))
    if "install_bmaptool_name" in options:
        check_switch(disp, stmts, pn, pcflags, problems)
    return target


def check_switch(disp, stmts, pn, pcflags, problems):
    """bmapkit-native stands in for bmaptool-native exactly when local.conf asks."""
    switch = {"PREFERRED_PROVIDER_bmaptool-native": pn + "-native"}

    def native(preset):
        p = dict(preset, PN=pn + "-native", BPN=pn)
        return Model(stmts, p, ["class-native", "pn-" + pn + "-native"])

    def installs_name(m):
        args = m.get("EXTRA_OEMESON") or ""
        for word in m.words("PACKAGECONFIG"):
            args += " " + pcflags.get(word, [""])[0]
        return "-Dinstall_bmaptool_name=true" in args.split()

    for label, preset, want in (("without", {}, False), ("with", switch, True)):
        m = native(preset)
        for var in ("PROVIDES", "RPROVIDES:" + pn + "-native"):
            has = "bmaptool-native" in m.words(var)
            if has != want:
                problems.append("%s: %s the switch (PREFERRED_PROVIDER_bmaptool-native = "
                                "\"%s-native\"), the native %s %s bmaptool-native"
                                % (disp, label, pn, var.split(":")[0],
                                   "lacks" if want else "still names"))
        if installs_name(m) != want:
            problems.append("%s: %s the switch, the native build %s "
                            "-Dinstall_bmaptool_name=true" %
                            (disp, label, "lacks" if want else "still passes"))
    target = Model(stmts, {"PN": pn, "BPN": pn}, ["class-target", "pn-" + pn])
    if "bmaptool-native" in target.words("PROVIDES"):
        problems.append("%s: the target recipe must not provide bmaptool-native" % disp)


def check_readme(layer, rel_layer, depends, problems):
    path = os.path.join(layer, "README.md")
    if not os.path.exists(path):
        problems.append("%s: missing" % os.path.join(rel_layer, "README.md"))
        return
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for w in depends:
        if not re.search(r"(?<![\w-])" + re.escape(w) + r"(?![\w-])", text):
            problems.append("%s: does not say where recipe %s comes from"
                            % (os.path.join(rel_layer, "README.md"), w))
    for phrase in ("PREFERRED_PROVIDER_bmaptool-native", "bitbake-layers add-layer"):
        if phrase not in text:
            problems.append("%s: does not mention %s"
                            % (os.path.join(rel_layer, "README.md"), phrase))


def check_tree(root):
    """All problems of ROOT's layer, as 'file:line: what' strings."""
    problems = []
    root = os.path.abspath(root)
    opt_problems = []
    options = read_meson_options(root, opt_problems)
    probe = read_meson(root, set(), [])
    name = probe.get("name")
    if not name:
        return ["%s/meson.build: no project() name" % root]
    layer = os.path.join(root, "meta-" + name)
    rel_layer = "meta-" + name
    if not os.path.isdir(layer):
        return ["%s: missing" % rel_layer]
    problems += opt_problems

    stmts_of = {}
    for path, conf in metadata_files(layer):
        stmts_of[path] = parse_file(path, conf, problems, os.path.relpath(path, root))

    # Recipes with their bbappends and includes spliced in.
    def with_includes(path, seen):
        out = []
        for st in stmts_of.get(path) or parse_file(path, False, problems,
                                                   os.path.relpath(path, root)):
            if st.kind in ("include", "require") and "${" not in st.arg:
                for fn in st.arg.split():
                    cands = [os.path.join(os.path.dirname(path), fn), os.path.join(layer, fn)]
                    found = next((c for c in cands if os.path.exists(c)), None)
                    if found and found not in seen:
                        out += with_includes(found, seen | {found})
                    elif not found and st.kind == "require":
                        problems.append("%s:%d: require %s: no such file in the layer"
                                        % (os.path.relpath(path, root), st.line, fn))
            else:
                out.append(st)
        return out

    recipes = [p for p in stmts_of if p.endswith(".bb")]
    appends = [p for p in stmts_of if p.endswith(".bbappend")]
    full = {}
    for r in recipes:
        stmts = with_includes(r, {r})
        stem = os.path.basename(r)[:-3]
        for a in appends:
            if fnmatch.fnmatch(stem, os.path.basename(a)[:-9].replace("%", "*")):
                stmts += with_includes(a, {a})
        full[r] = stmts

    # meson.build again, now skipping the folders the project recipe turns off.
    skipped = set()
    own = {}
    project_recipe = None
    for r in sorted(recipes):
        pn = os.path.basename(r).split("_")[0].rsplit(".", 1)[0]
        m = Model(full[r], {"PN": pn, "BPN": pn}, ["class-target"])
        own[pn] = m
        if pn == name:
            project_recipe = r
            for opt in re.findall(r"(?<!\S)-D(\w+)=disabled", m.get("EXTRA_OEMESON") or ""):
                skipped.add(opt)
    facts = read_meson(root, skipped, problems)
    if project_recipe is None:
        problems.append("%s: no recipe %s_*.bb" % (rel_layer, name))
    for r in sorted(recipes):
        target = check_recipe(root, r, full[r], facts, options, own, problems)
        if r == project_recipe:
            pcf = packageconfig_flags(target, "", [])
            deps = target.words("DEPENDS") + sorted(
                {w for f in pcf.values() for w in f[2].split()})
            check_readme(layer, rel_layer, deps, problems)
    check_layer_conf(layer, rel_layer, stmts_of, facts, recipes, problems)
    return problems


# --- Self-test ----------------------------------------------------------------------

GOOD = {
    "meson.build": """project('demo', 'c', version : '1.2.0', license : 'MIT',
  meson_version : '>= 1.1.0')
zlib_dep = dependency('zlib')   # dependency('notthis') in a comment
gpgme_dep = dependency('gpgme', required : get_option('gpgme'))
threads_dep = dependency('threads')
subdir('tests')
""",
    "tests/meson.build": "cmocka_dep = dependency('cmocka')\n",
    "meson_options.txt": """option('install_bmaptool_name', type : 'boolean', value : false)
option('tests', type : 'feature', value : 'auto')
option('gpgme', type : 'feature', value : 'auto')
""",
    "LICENSE": "MIT License\n\nCopyright (c) the demo authors\n",
    "meta-demo/README.md": """demo layer: zlib from openembedded-core, gpgme too.
bitbake-layers add-layer meta-demo;
PREFERRED_PROVIDER_bmaptool-native = "demo-native"
""",
    "meta-demo/conf/layer.conf": """BBPATH .= ":${LAYERDIR}"
BBFILES += "${LAYERDIR}/recipes-*/*/*.bb \\
            ${LAYERDIR}/recipes-*/*/*.bbappend"
BBFILE_COLLECTIONS += "demo"
BBFILE_PATTERN_demo = "^${LAYERDIR}/"
BBFILE_PRIORITY_demo = "6"
LAYERDEPENDS_demo = "core"
LAYERSERIES_COMPAT_demo = "scarthgap wrynose"
""",
    "meta-demo/recipes-support/demo/demo_git.bb": """SUMMARY = "demo"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://LICENSE;md5=@MD5@"
DEMO_GIT_URI ?= "git://example.org/demo.git;protocol=https;branch=main"
SRC_URI = "${DEMO_GIT_URI};destsuffix=${BP}"
SRCREV ?= "0123456789abcdef0123456789abcdef01234567"
PV = "1.2.0+git"
DEPENDS = "zlib"
inherit meson pkgconfig
EXTRA_OEMESON = "-Dtests=disabled -Dwerror=false"
PACKAGECONFIG ??= "gpgme"
PACKAGECONFIG[gpgme] = "-Dgpgme=enabled,-Dgpgme=disabled,gpgme"
PACKAGECONFIG[bmaptool-name] = "-Dinstall_bmaptool_name=true,-Dinstall_bmaptool_name=false"
IS_TOOL = "${@'1' if d.getVar('PREFERRED_PROVIDER_bmaptool-native') == 'demo-native' else ''}"
PROVIDES:append:class-native = " ${@'bmaptool-native' if d.getVar('IS_TOOL') else ''}"
RPROVIDES:${PN}:append:class-native = " ${@'bmaptool-native' if d.getVar('IS_TOOL') else ''}"
PACKAGECONFIG:append:class-native = " ${@'bmaptool-name' if d.getVar('IS_TOOL') else ''}"
do_install:append() {
    install -d ${D}${datadir}/demo \\
        && true
}
python do_note() {
    bb.note("x")
}
def demo_helper(d):
    return "x"

BBCLASSEXTEND = "native nativesdk"
""",
}

RECIPE = "meta-demo/recipes-support/demo/demo_git.bb"
LAYERCONF = "meta-demo/conf/layer.conf"


def _sub(path, old, new):
    def edit(files):
        assert old in files[path], (path, old)
        files[path] = files[path].replace(old, new, 1)
    return edit


def _add(path, text):
    def edit(files):
        files[path] = files[path] + text
    return edit


BROKEN = [
    ("unparsable line", _add(RECIPE, 'DEPENDS "zlib"\n'), "cannot parse"),
    ("unquoted value", _add(RECIPE, "SECTION = libs\n"), "not quoted"),
    ("indented statement", _add(RECIPE, '  SECTION = "libs"\n'), "indented"),
    ("stray quote", _add(RECIPE, 'SUMMARY = "a "demo"\n'), "stray"),
    ("inherit in layer.conf", _add(LAYERCONF, "inherit demo\n"), "not allowed"),
    ("old _append override", _add(RECIPE, 'DEPENDS_append = " zlib"\n'),
     "old override syntax"),
    ("old _${PN} override", _add(RECIPE, 'RDEPENDS_${PN} = "zlib"\n'),
     "old override syntax"),
    ("old override in a function name",
     _add(RECIPE, "do_install_append() {\n    true\n}\n"), "old override syntax"),
    ("function not closed", _add(RECIPE, "do_compile:prepend() {\n    true\n"),
     "not closed"),
    ("comment inside a continuation",
     _sub(LAYERCONF, "*.bb \\\n", "*.bb \\\n# no\n"), "comment inside"),
    (":append without a space",
     _sub(RECIPE, 'DEPENDS = "zlib"', 'DEPENDS = "zlib"\nDEPENDS:append = "gpgme"'),
     "start with a space"),
    ("no LICENSE", _sub(RECIPE, 'LICENSE = "MIT"\n', ""), "LICENSE is not set"),
    ("no LIC_FILES_CHKSUM", _sub(RECIPE, 'LIC_FILES_CHKSUM = "file://LICENSE;md5=@MD5@"\n',
                                 ""), "LIC_FILES_CHKSUM is not set"),
    ("LICENSE changed under the checksum", _add("LICENSE", "more\n"), "md5"),
    ("no SRC_URI", _sub(RECIPE, 'SRC_URI = "${DEMO_GIT_URI};destsuffix=${BP}"\n', ""),
     "SRC_URI is not set"),
    ("git without SRCREV", _sub(RECIPE, 'SRCREV ?= "0123456789abcdef0123456789abcdef01234567"\n',
                                ""), "SRCREV"),
    ("git without branch", _sub(RECIPE, ";branch=main", ""), "branch="),
    ("git URI that local.conf cannot change", _sub(RECIPE, "DEMO_GIT_URI ?=", "DEMO_GIT_URI ="),
     "set with ?="),
    ("no LAYERSERIES_COMPAT", _sub(LAYERCONF, 'LAYERSERIES_COMPAT_demo = "scarthgap wrynose"\n',
                                   ""), "LAYERSERIES_COMPAT"),
    ("release whose meson is too old", _sub(LAYERCONF, '"scarthgap wrynose"',
                                            '"mickledore scarthgap wrynose"'), "mickledore"),
    ("unknown release", _sub(LAYERCONF, '"scarthgap wrynose"', '"scarthgap wrynoze"'),
     "unknown release"),
    ("DEPENDS names nothing", _sub(RECIPE, 'DEPENDS = "zlib"', 'DEPENDS = ""'),
     "DEPENDS names nothing"),
    ("library of meson.build missing from DEPENDS",
     _add("meson.build", "lz4_dep = dependency('liblz4')\n"), "lacks lz4"),
    ("DEPENDS names what meson.build does not use",
     _sub(RECIPE, 'DEPENDS = "zlib"', 'DEPENDS = "zlib expat"'), "expat"),
    ("dependency without a mapping", _add("meson.build", "x = dependency('libfoo')\n"),
     "DEP_RECIPES"),
    ("BBCLASSEXTEND without nativesdk", _sub(RECIPE, '"native nativesdk"', '"native"'),
     "must name nativesdk"),
    ("BBCLASSEXTEND without native", _sub(RECIPE, '"native nativesdk"', '"nativesdk"'),
     "must name native "),
    ("meson option that does not exist",
     _sub(RECIPE, "-Dtests=disabled", "-Dtests=disabled -Dnosuch=true"), "nosuch"),
    ("meson option with a bad value", _sub(RECIPE, "-Dtests=disabled", "-Dtests=off"),
     "takes"),
    ("tests not disabled", _sub(RECIPE, "-Dtests=disabled ", ""), "-Dtests=disabled"),
    ("auto feature left to chance",
     _sub(RECIPE, 'PACKAGECONFIG[gpgme] = "-Dgpgme=enabled,-Dgpgme=disabled,gpgme"\n', ""),
     "'gpgme' is 'auto'"),
    ("switch that is not opt-in",
     _sub(RECIPE, "${@'bmaptool-native' if d.getVar('IS_TOOL') else ''}\"\nRPROVIDES",
          "bmaptool-native\"\nRPROVIDES"), "still names bmaptool-native"),
    ("switch that installs no bmaptool name",
     _sub(RECIPE, 'PACKAGECONFIG:append:class-native = ', 'X = '), "lacks -Dinstall"),
    ("bbappend breaking the recipe",
     lambda files: files.update({"meta-demo/recipes-support/demo/demo_%.bbappend":
                                 'BBCLASSEXTEND:remove = "nativesdk"\n'}),
     "must name nativesdk"),
    ("recipe outside BBFILES",
     lambda files: files.update({"meta-demo/demo-extra/x/x_1.0.bb": GOOD[RECIPE]}),
     "BBFILES does not match"),
    ("README without a dependency", _sub("meta-demo/README.md", "gpgme too", "too"),
     "gpgme"),
]


def write_tree(top, files):
    # The checksum is always the good LICENSE's, so that changing LICENSE breaks it.
    md5 = hashlib.md5(GOOD["LICENSE"].encode()).hexdigest()
    files = {k: v.replace("@MD5@", md5) for k, v in files.items()}
    for rel, text in files.items():
        path = os.path.join(top, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def self_test(script):
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        good = os.path.join(tmp, "good")
        write_tree(good, GOOD)
        found = check_tree(good)
        if found:
            failures.append("the good fixture fails: " + "; ".join(found))
        for i, (label, edit, expect) in enumerate(BROKEN):
            files = dict(GOOD)
            edit(files)
            top = os.path.join(tmp, "broken%d" % i)
            write_tree(top, files)
            found = check_tree(top)
            if not any(expect in p for p in found):
                failures.append("broken fixture '%s' did not fail with '%s' (it gave: %s)"
                                % (label, expect, "; ".join(found) or "nothing"))
        # The exit status too, through the command line.
        for top, want in ((good, 0), (os.path.join(tmp, "broken0"), 1)):
            rc = subprocess.run([sys.executable, script, "--no-self-test", top],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL).returncode
            if rc != want:
                failures.append("exit status %d on %s, want %d" % (rc, top, want))
    return failures


def main(argv):
    args = [a for a in argv[1:] if a != "--no-self-test"]
    if len(args) != 1:
        print("usage: check-layer.py [--no-self-test] SOURCE_ROOT", file=sys.stderr)
        return 2
    if "--no-self-test" not in argv:
        failures = self_test(os.path.abspath(argv[0]))
        for f in failures:
            print("self-test: " + f, file=sys.stderr)
        if failures:
            return 1
        print("self-test: the good layer passes, %d broken ones fail" % len(BROKEN))
    problems = check_tree(args[0])
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print("%d problem(s) in the layer" % len(problems), file=sys.stderr)
        return 1
    print("layer: no problems")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
