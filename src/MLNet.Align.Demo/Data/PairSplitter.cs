using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace MLNet.Align.Demo.Data;

/// <summary>Which side of the split an image is on.</summary>
public enum PairSplitSide
{
    /// <summary>Used for training.</summary>
    Train,
    /// <summary>Held out for image-text retrieval evaluation.</summary>
    HeldOut,
    /// <summary>Held out as the zero-shot proxy set for model selection.</summary>
    Proxy,
}

/// <summary>Train and held-out pairs of a split.</summary>
/// <param name="Train">Pairs whose image is on the training side.</param>
/// <param name="HeldOut">Pairs whose image is held out.</param>
public sealed record PairSplit(IReadOnlyList<PairRecord> Train, IReadOnlyList<PairRecord> HeldOut);

/// <summary>Deterministic splits by a hash of the image path: the same image lands on the same side on every machine
/// and every run, whatever else is in the file, and all captions of one image stay together.</summary>
public static class PairSplitter
{
    /// <summary>Salt of the held-out / proxy split hash.</summary>
    public const string SplitSalt = "mlnet-align/split/v1";
    /// <summary>Salt of the subset hash (different from the split's, so a subset keeps the split's proportions).</summary>
    public const string SubsetSalt = "mlnet-align/subset/v1";

    /// <summary>A number in [0, 1) from SHA-256(salt + "\n" + key) (first 8 bytes, big-endian, / 2^64). The key is
    /// normalised to '/' separators.</summary>
    public static double UnitHash(string key, string salt = SplitSalt)
    {
        ArgumentNullException.ThrowIfNull(key);
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(salt + "\n" + key.Replace('\\', '/')), hash);
        return BinaryPrimitives.ReadUInt64BigEndian(hash) / 18446744073709551616.0;
    }

    /// <summary>The side of an image: held out when its hash is below <paramref name="heldOutFraction"/>; proxy when
    /// <paramref name="proxyEligible"/> and the hash is in [heldOutFraction, heldOutFraction + proxyFraction); else train.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A fraction is outside [0, 1] or their sum exceeds 1.</exception>
    public static PairSplitSide Assign(string imageKey, double heldOutFraction, double proxyFraction = 0, bool proxyEligible = false)
    {
        CheckFractions(heldOutFraction, proxyFraction);
        double u = UnitHash(imageKey);
        if (u < heldOutFraction) return PairSplitSide.HeldOut;
        if (proxyEligible && u < heldOutFraction + proxyFraction) return PairSplitSide.Proxy;
        return PairSplitSide.Train;
    }

    /// <summary>Splits pairs by image: a pair is held out when <c>UnitHash(pair.Image) &lt; heldOutFraction</c>. Order
    /// within each side is the input order.</summary>
    /// <param name="pairs">Pairs, any number of captions per image.</param>
    /// <param name="heldOutFraction">Expected fraction of images held out, in [0, 1] (e.g. 0.1).</param>
    public static PairSplit Split(IReadOnlyList<PairRecord> pairs, double heldOutFraction)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        CheckFractions(heldOutFraction, 0);
        var train = new List<PairRecord>();
        var held = new List<PairRecord>();
        var side = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var p in pairs)
        {
            if (!side.TryGetValue(p.Image, out bool isHeld))
                side[p.Image] = isHeld = UnitHash(p.Image) < heldOutFraction;
            (isHeld ? held : train).Add(p);
        }
        return new PairSplit(train, held);
    }

    /// <summary>Splits by a fixed number of held-out images: the <paramref name="heldOutImages"/> images with the
    /// smallest hash (ties impossible in practice; broken by ordinal path).</summary>
    public static PairSplit SplitByCount(IReadOnlyList<PairRecord> pairs, int heldOutImages)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        ArgumentOutOfRangeException.ThrowIfNegative(heldOutImages);
        var chosen = pairs.Select(p => p.Image).Distinct(StringComparer.Ordinal)
            .OrderBy(i => UnitHash(i)).ThenBy(i => i, StringComparer.Ordinal)
            .Take(heldOutImages).ToHashSet(StringComparer.Ordinal);
        return new PairSplit(pairs.Where(p => !chosen.Contains(p.Image)).ToList(), pairs.Where(p => chosen.Contains(p.Image)).ToList());
    }

    private static void CheckFractions(double heldOut, double proxy)
    {
        if (!(heldOut >= 0 && heldOut <= 1)) throw new ArgumentOutOfRangeException(nameof(heldOut), heldOut, "held-out fraction must be in [0, 1].");
        if (!(proxy >= 0 && proxy <= 1)) throw new ArgumentOutOfRangeException(nameof(proxy), proxy, "proxy fraction must be in [0, 1].");
        if (heldOut + proxy > 1) throw new ArgumentOutOfRangeException(nameof(proxy), proxy, $"held-out + proxy fractions exceed 1 ({heldOut} + {proxy}).");
    }
}
