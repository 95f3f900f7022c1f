
move.signed_bundle.v1
move.bundle.v1:
cnn
 —ª¤W7•	î	~[X‚œ—·¡ìtºÿèDF}"@O|@ÔeRŸÕSs½^N¡q)¦»!w—ÅÿkHDıÎaæ­Á sçèØ÷NÌ¯ë‹(„DI§'2LoY^