package bot

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"

	"github.com/stopdeploy/stopdeploy/commands"
	"github.com/stopdeploy/stopdeploy/deploy"
	"github.com/stopdeploy/stopdeploy/policy"
)

// A pick list is an ephemeral list of deployments, each with a Stop…
// button that starts the same request as typing its ID, in its place: the
// answer to an ID found in several places, and to /stopdeploy list.
const (
	blockPick  = "stopdeploy_pick" // a row's block ID starts with it
	actionPick = "pick"            // a row's action ID starts with it
	pickPrefix = "pick1 "
	maxPicks   = 20
)

// pickValue is what a row's button carries: the place, the ID and the
// rollback choice. It is not signed: pressing it only asks again, and the
// request path checks everything as for a typed command.
func pickValue(d deploy.Deployment, rollback bool) string {
	return pickPrefix + strings.Join([]string{d.Place.Account, d.Place.Region, d.ID, strconv.FormatBool(rollback)}, " ")
}

var pickPattern = regexp.MustCompile(`^pick1 ([A-Za-z0-9._-]{1,64}) ([a-z]{2}(?:-[a-z]+)+-[0-9]+) (d-[A-Z0-9]{9}) (true|false)$`)

func readPick(value string) (commands.Request, deploy.Place, bool) {
	m := pickPattern.FindStringSubmatch(value)
	if m == nil {
		return commands.Request{}, deploy.Place{}, false
	}
	return commands.Request{DeploymentID: m[3], Rollback: m[4] == "true"}, deploy.Place{Account: m[1], Region: m[2]}, true
}

// pickList answers a request for an ID found in several places: the user
// picks one, never the bot.
func (b *Bot) pickList(ctx context.Context, log zerolog.Logger, to recipient, req commands.Request, found []deploy.Deployment) {
	head := fmt.Sprintf("%s exists in %d places. Which one do you mean? Nothing was stopped.", code(req.DeploymentID), len(found))
	b.tellBlocks(ctx, log, to, head, pickBlocks(head, found, req.Rollback))
}

func pickBlocks(head string, ds []deploy.Deployment, rollback bool) []slack.Block {
	blocks := []slack.Block{slack.NewSectionBlock(mrkdwn(head), nil, nil)}
	for i, d := range ds {
		if i == maxPicks {
			break
		}
		line := fmt.Sprintf("%s · *%s* / *%s* · %s · %s · %s", code(d.ID), awsText(d.Application), awsText(d.Group),
			statusWords(d.Status), awsText(d.Place.Account+" / "+d.Place.Region), startedText(d))
		btn := slack.NewButtonBlockElement(actionPick+"_"+strconv.Itoa(i), pickValue(d, rollback), plain("Stop…"))
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(line), nil, slack.NewAccessory(btn),
			slack.SectionBlockOptionBlockID(blockPick+"_"+strconv.Itoa(i))))
	}
	return blocks
}

// startedText is who or what started d, and when, with its progress.
func startedText(d deploy.Deployment) string {
	s, ok := creators[d.Creator]
	if !ok {
		s = orDash(d.Creator)
	}
	s = "started by " + awsText(s)
	if !d.CreateTime.IsZero() {
		s += " " + slackTime(d.CreateTime)
	}
	if d.Overview != nil {
		s += " · " + overview(*d.Overview)
	}
	return s
}

// handlePick is a press of a row's Stop…: the request path, in that place.
func (b *Bot) handlePick(ctx context.Context, cb slack.InteractionCallback, a *slack.BlockAction) {
	to := recipient{channel: firstNonEmpty(cb.Channel.ID, cb.Container.ChannelID), user: cb.User.ID, responseURL: cb.ResponseURL}
	log := b.log.With().Str("user", to.user).Str("channel", to.channel).Logger()
	req, place, ok := readPick(a.Value)
	if !ok {
		log.Warn().Msg("refused a pick whose value does not read")
		b.tell(ctx, log, to, "I cannot act on this button. Nothing was stopped. Run `/stopdeploy` again.")
		b.obs.Refused(outcomeBadSignature)
		return
	}
	outcome := b.request(ctx, log, to, req, place)
	b.obs.Command(outcome)
}

// list answers /stopdeploy list: the active deployments the user may stop,
// newest first, each a row to pick; those they may not stop are counted,
// not shown, and places that could not be searched are named.
func (b *Bot) list(ctx context.Context, log zerolog.Logger, to recipient, req commands.Request) string {
	active, failed := b.deploy.Active(ctx, req.Application, req.Group)
	mine, hidden := b.mayStop(ctx, to, active)
	what := "active deployments"
	if req.Application != "" {
		what += " of " + awsText(strings.TrimSpace(req.Application+" / "+req.Group))
	}
	var head string
	switch len(mine) {
	case 0:
		head = "No " + what + " you may stop."
	case 1:
		head = "1 of the " + what + " you may stop (newest first):"
	default:
		head = fmt.Sprintf("%d %s you may stop, newest first:", len(mine), what)
	}
	blocks := pickBlocks(head, mine, false)
	var notes []string
	if len(mine) > maxPicks {
		notes = append(notes, fmt.Sprintf("…and %d more: narrow the list with `%s list <application> [deployment-group]`.", len(mine)-maxPicks, commands.Name))
	}
	if hidden > 0 {
		notes = append(notes, fmt.Sprintf("%d more you may not stop.", hidden))
	}
	notes = append(notes, failureNotes(failed)...)
	if len(notes) > 0 {
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn(strings.Join(notes, "\n"))))
	}
	log.Info().Int("active", len(active)).Int("shown", min(len(mine), maxPicks)).Int("hidden", hidden).Int("failed_places", len(failed)).Msg("listed active deployments")
	b.tellBlocks(ctx, log, to, head, blocks)
	return "listed"
}

// byGroup answers /stopdeploy <application> <group>: its one active
// deployment goes on as if typed by ID; several are a list to pick from.
func (b *Bot) byGroup(ctx context.Context, log zerolog.Logger, to recipient, req commands.Request) string {
	active, failed := b.deploy.Active(ctx, req.Application, req.Group)
	name := awsText(req.Application + " / " + req.Group)
	switch len(active) {
	case 0:
		reply := fmt.Sprintf("No active deployment of %s. Nothing was stopped.", name)
		if notes := failureNotes(failed); len(notes) > 0 {
			reply += "\n" + strings.Join(notes, "\n")
		}
		b.tell(ctx, log, to, reply)
		return "not_found"
	case 1:
		d := active[0]
		return b.request(ctx, log, to, commands.Request{DeploymentID: d.ID, Rollback: req.Rollback}, d.Place)
	}
	head := fmt.Sprintf("%s has %d active deployments. Which one do you mean? Nothing was stopped.", name, len(active))
	b.tellBlocks(ctx, log, to, head, pickBlocks(head, active, req.Rollback))
	return "ambiguous"
}

// mayStop splits ds into those user may request a stop of, here, and a
// count of the others.
func (b *Bot) mayStop(ctx context.Context, to recipient, ds []deploy.Deployment) (mine []deploy.Deployment, hidden int) {
	for _, d := range ds {
		t := policy.Target{Application: d.Application, Group: d.Group, Account: d.Place.Account, Region: d.Place.Region}
		if _, dec, err := b.policy.MayRequest(ctx, t, to.user, to.channel, b.members); dec.Allowed && err == nil {
			mine = append(mine, d)
		} else {
			hidden++
		}
	}
	return mine, hidden
}

// failureNotes names the places that could not be searched, and why.
func failureNotes(failed []deploy.PlaceFailure) []string {
	var out []string
	for _, f := range failed {
		out = append(out, ":warning: Could not search "+awsText(f.String()))
	}
	return out
}
