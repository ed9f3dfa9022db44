package sandbox

import (
	"html/template"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// directory turns the IDs that mrkdwn carries into the names a reader sees.
type directory struct {
	users    map[string]string // user ID → handle ("alice")
	channels map[string]string // channel ID → name ("deploys")
	groups   map[string]string // user-group ID → handle ("oncall")
}

// emoji maps the shortcodes the bot writes (and a few common ones) to
// characters; unknown shortcodes stay as text, as in Slack.
var emoji = map[string]string{
	"octagonal_sign":         "🛑",
	"hourglass_flowing_sand": "⏳",
	"hourglass":              "⌛",
	"white_check_mark":       "✅",
	"heavy_check_mark":       "✔️",
	"x":                      "❌",
	"grey_question":          "❔",
	"no_entry_sign":          "🚫",
	"warning":                "⚠️",
	"rotating_light":         "🚨",
	"rocket":                 "🚀",
	"eyes":                   "👀",
	"+1":                     "👍",
	"thumbsup":               "👍",
	"tada":                   "🎉",
}

var (
	preRE  = regexp.MustCompile("```[^`]+```")
	codeRE = regexp.MustCompile("`[^`\n]+`")
	// angleRE finds Slack's <…> tokens: mentions, channels, specials, links.
	angleRE = regexp.MustCompile(`<([^<>\n]+)>`)
	emojiRE = regexp.MustCompile(`:([a-z0-9_+-]+):`)
	// Atoms (already rendered HTML) stand in the text as \uE000 n \uE001
	// while the formatting marks are applied around them.
	atomRE   = regexp.MustCompile("\uE000([0-9]+)\uE001")
	entities = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")
	noAtoms  = strings.NewReplacer("\uE000", "\uFFFD", "\uE001", "\uFFFD")
)

// marks are the inline formatting characters and their HTML elements.
var marks = map[byte]string{'*': "b", '_': "i", '~': "s"}

// mrkdwn renders Slack mrkdwn as HTML. Every piece of text in the result is
// escaped; the only markup is the markup written here. Code, <…> tokens and
// emoji become atoms first; the rest is decoded, escaped and formatted, then
// the atoms are put back.
func (d directory) mrkdwn(s string) template.HTML {
	var atoms []string
	atom := func(html string) string {
		atoms = append(atoms, html)
		return "\uE000" + strconv.Itoa(len(atoms)-1) + "\uE001"
	}
	code := func(class string) func(string) string {
		return func(m string) string {
			inner := strings.Trim(m, "`")
			if class == "sk-pre" {
				inner = strings.Trim(inner, "\n")
			}
			return atom(`<code class="` + class + `">` + template.HTMLEscapeString(entities.Replace(inner)) + `</code>`)
		}
	}
	s = noAtoms.Replace(s)
	s = preRE.ReplaceAllStringFunc(s, code("sk-pre"))
	s = codeRE.ReplaceAllStringFunc(s, code("sk-code"))
	s = angleRE.ReplaceAllStringFunc(s, func(m string) string { return atom(d.angle(m[1 : len(m)-1])) })
	s = emojiRE.ReplaceAllStringFunc(s, func(m string) string {
		if e, ok := emoji[m[1:len(m)-1]]; ok {
			return atom(emojiHTML(m, e))
		}
		return m
	})
	s = format(template.HTMLEscapeString(entities.Replace(s)))
	s = strings.ReplaceAll(s, "\n", "<br>")
	return template.HTML(atomRE.ReplaceAllStringFunc(s, func(m string) string {
		n, _ := strconv.Atoi(m[len("\uE000") : len(m)-len("\uE001")])
		return atoms[n]
	}))
}

func emojiHTML(code, char string) string {
	return `<span class="sk-emoji" title="` + template.HTMLEscapeString(code) + `">` + char + `</span>`
}

// angle renders the inside of one <…> token.
func (d directory) angle(tok string) string {
	target, label, _ := strings.Cut(tok, "|")
	label = entities.Replace(label)
	esc := template.HTMLEscapeString
	or := func(names ...string) string {
		for _, n := range names {
			if n != "" {
				return n
			}
		}
		return ""
	}
	switch {
	case strings.HasPrefix(target, "@"):
		id := target[1:]
		return `<span class="sk-mention" data-user="` + esc(id) + `">@` + esc(or(d.users[id], label, id)) + `</span>`
	case strings.HasPrefix(target, "#"):
		id := target[1:]
		return `<a class="sk-channel-link" href="?channel=` + esc(url.QueryEscape(id)) + `" data-channel="` + esc(id) + `">#` +
			esc(or(d.channels[id], label, id)) + `</a>`
	case strings.HasPrefix(target, "!"):
		return d.special(target[1:], label)
	}
	if u := entities.Replace(target); safeURL(u) {
		return `<a class="sk-link" href="` + esc(u) + `" target="_blank" rel="noopener noreferrer">` + esc(or(label, u)) + `</a>`
	}
	return esc(entities.Replace("<" + tok + ">")) // not a token Slack knows: shown as typed
}

// special renders <!here>, <!subteam^S…>, <!date^…|fallback> and the like.
func (d directory) special(s, label string) string {
	esc := template.HTMLEscapeString
	kind, rest, _ := strings.Cut(s, "^")
	switch kind {
	case "here", "channel", "everyone":
		return `<span class="sk-mention">@` + esc(kind) + `</span>`
	case "subteam":
		name := d.groups[rest]
		if name == "" {
			name = strings.TrimPrefix(label, "@")
		}
		if name == "" {
			name = rest
		}
		return `<span class="sk-mention">@` + esc(name) + `</span>`
	case "date":
		if label == "" {
			label = rest
		}
		stamp, _, _ := strings.Cut(rest, "^")
		sec, err := strconv.ParseInt(stamp, 10, 64)
		if err != nil {
			return esc(label)
		}
		t := time.Unix(sec, 0)
		return `<time class="sk-date" datetime="` + t.UTC().Format(time.RFC3339) + `" title="` +
			esc(t.Format("Mon 2 Jan 2006 15:04:05 MST")) + `">` + esc(label) + `</time>`
	}
	if label != "" {
		return esc(label)
	}
	return esc("<!" + s + ">")
}

// safeURL accepts only the link schemes Slack makes clickable.
func safeURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return u.Host != ""
	case "mailto":
		return u.Opaque != ""
	}
	return false
}

// format applies *bold*, _italic_ and ~strike~ to escaped text. A mark opens
// after a non-word character and before a non-space, and closes on the same
// line before a non-word character, as in Slack.
func format(s string) string {
	for i := 0; i < len(s); i++ {
		tag, ok := marks[s[i]]
		if !ok || !opens(s, i) {
			continue
		}
		j := closing(s, i)
		if j < 0 {
			continue
		}
		return s[:i] + "<" + tag + ">" + format(s[i+1:j]) + "</" + tag + ">" + format(s[j+1:])
	}
	return s
}

func opens(s string, i int) bool {
	if i+1 >= len(s) || s[i+1] == s[i] {
		return false
	}
	if next, _ := utf8.DecodeRuneInString(s[i+1:]); unicode.IsSpace(next) {
		return false
	}
	prev, _ := utf8.DecodeLastRuneInString(s[:i])
	return i == 0 || !isWord(prev)
}

func closing(s string, i int) int {
	for j := i + 2; j < len(s); j++ {
		switch {
		case s[j] == '\n':
			return -1
		case s[j] != s[i]:
			continue
		}
		if prev, _ := utf8.DecodeLastRuneInString(s[:j]); unicode.IsSpace(prev) {
			continue
		}
		if next, _ := utf8.DecodeRuneInString(s[j+1:]); j+1 < len(s) && isWord(next) {
			continue
		}
		return j
	}
	return -1
}

func isWord(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// plainText renders a plain_text object: escaped, with emoji shortcodes
// unless emoji is false, and line breaks kept.
func plainText(s string, emojiOK bool) template.HTML {
	out := template.HTMLEscapeString(s)
	if emojiOK {
		out = emojiRE.ReplaceAllStringFunc(out, func(m string) string {
			if e, ok := emoji[m[1:len(m)-1]]; ok {
				return emojiHTML(m, e)
			}
			return m
		})
	}
	return template.HTML(strings.ReplaceAll(out, "\n", "<br>"))
}
