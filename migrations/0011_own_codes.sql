-- 0011: the dispatcher's own incidents can be regraded like any signal.
--
-- Open/close supervision (未按时布防, 非时段撤防) and link-test supervision open
-- incidents under codes of the dispatcher's own, ARC:SCHEDULE and ARC:LINK, and
-- look them up in classification_overrides like SIA and Contact ID codes; 0004's
-- CHECK admitted only SIA:, CID: and class: matches, so a centre could not
-- regrade them. Exactly these two are admitted, not any ARC: text, so a typing
-- mistake is still refused by the table.

ALTER TABLE classification_overrides DROP CONSTRAINT classification_overrides_match;
ALTER TABLE classification_overrides ADD CONSTRAINT classification_overrides_match
    CHECK (match ~ '^(SIA:[A-Z]{2}|CID:[0-9]{3}|class:[a-z_]+|ARC:(SCHEDULE|LINK))$');
