//! Compiled-module artifacts (`Module::serialize` / `Module::deserialize`).
//!
//! Layout, little-endian: magic `WZRXCWSM`, format version, the engine fingerprint
//! (wazerox version and build id, translation settings, enabled proposals), the
//! code generator's target (Cranelift settings; architecture and CPU features, for
//! runtime-only builds, see `codegen.rs`), the original Wasm binary, the linked
//! code image with libcall slots zeroed, the function table, the trap table, the
//! exception handler table (`try_call` sites), the stack maps (GC roots at call
//! sites, docs/gc.md), the libcall relocations, the address map (code offset →
//! Wasm offset, for backtraces), the trampolines of every function type of the
//! module (so that a build without a compiler can call in and out of the code),
//! and a 64-bit checksum of everything before it (FNV-style multiply-xor over four
//! interleaved 64-bit lanes: byte-at-a-time FNV-1a took about 1 ms of the 5 ms a
//! 3.5 MB artifact may take to load).
//!
//! Loading re-reads the module's declarations from the embedded binary (no
//! function-body validation or compilation: that is what was cached) and maps the
//! code. The checksum catches truncation and corruption; it does not authenticate:
//! whoever can write an artifact can make it run any code, which is why
//! `Module::deserialize` is `unsafe` and `wazerox run` wants `--allow-precompiled`
//! (docs/security.md). The build id (`build.rs`: a hash of the sources that define
//! the VMContext layout and code generation, `Cargo.lock` and `rustc -vV`) refuses
//! artifacts of any other build, whose code may assume another layout.

use crate::codegen::CodegenTarget;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind};
use wazerox_environ::{
    ExceptionHandler, LibcallRelocation, SignatureTrampolinesCode, StackMap, TrapCode,
};

const MAGIC: &[u8; 8] = b"WZRXCWSM";
const FORMAT_VERSION: u32 = 7;

/// The parts of a compiled module an artifact holds.
#[derive(Default)]
pub(crate) struct ArtifactParts {
    pub wasm: Vec<u8>,
    pub code: Vec<u8>,
    pub functions: Vec<(u32, u32)>,
    pub traps: Vec<(u32, TrapCode)>,
    pub handlers: Vec<ExceptionHandler>,
    /// GC roots of call sites, sorted by return address (docs/gc.md).
    pub stack_maps: Vec<StackMap>,
    pub libcalls: Vec<LibcallRelocation>,
    /// `(code offset, Wasm offset)`, sorted (see `CompiledModule::address_map`).
    pub address_map: Vec<(u32, u32)>,
}

/// What an artifact holds besides the module's own code: the code generator's
/// target and the trampolines of the module's function types, by type index.
pub(crate) struct ArtifactExtras {
    pub codegen: CodegenTarget,
    pub trampolines: Vec<(u32, SignatureTrampolinesCode)>,
}

/// Detects truncation and corruption (not tampering by someone who can also rewrite
/// the checksum). Four independent lanes let the multiplications overlap.
fn checksum(bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut lanes = [
        0xcbf2_9ce4_8422_2325u64,
        0x8422_2325_cbf2_9ce4,
        0x9ce4_8422_2325_cbf2,
        0x2325_cbf2_9ce4_8422,
    ];
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        for (lane, word) in lanes.iter_mut().zip(block.chunks_exact(8)) {
            let word = u64::from_le_bytes(word.try_into().expect("8-byte chunk"));
            *lane = (*lane ^ word).wrapping_mul(PRIME).rotate_left(31);
        }
    }
    let tail = blocks.remainder();
    let mut hash = lanes
        .iter()
        .fold(tail.len() as u64, |h, lane| (h ^ lane).wrapping_mul(PRIME));
    for byte in tail {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(PRIME);
    }
    hash
}

/// This build's id (see `build.rs`), recorded in every artifact's fingerprint.
const BUILD_ID: &str = env!("WAZEROX_BUILD_ID");
const BUILD_ID_KEY: &str = "build=";

/// The build id recorded in a fingerprint, if any (artifacts from before build ids
/// have none).
fn build_id_of(fingerprint: &str) -> Option<&str> {
    fingerprint
        .split(' ')
        .find_map(|word| word.strip_prefix(BUILD_ID_KEY))
}

/// Everything besides the code generator that must match between the engine that
/// wrote an artifact and the one loading it.
pub(crate) fn engine_fingerprint(engine: &Engine) -> String {
    let config = engine.config();
    format!(
        "wazerox-{} {BUILD_ID_KEY}{BUILD_ID} {:?} features={:#x} checkpoints={}",
        env!("CARGO_PKG_VERSION"),
        config.translation,
        config.features.bits(),
        config.checkpoints,
    )
}

/// Refuses code generated for another target: a build with a compiler requires the
/// exact settings it would use itself; a runtime-only build, code this CPU can run.
fn check_codegen(engine: &Engine, theirs: &CodegenTarget) -> Result<(), Error> {
    #[cfg(feature = "cranelift")]
    let mismatch = {
        let ours = engine.codegen_target().settings;
        (theirs.settings != ours).then(|| format!("engine:   {ours}"))
    };
    #[cfg(not(feature = "cranelift"))]
    let mismatch = {
        let _ = engine;
        crate::codegen::check_runs_on_host(theirs).err()
    };
    match mismatch {
        None => Ok(()),
        Some(why) => Err(Error::with_kind(
            ErrorKind::Unsupported,
            format!(
                "compiled artifact is for another code generator or CPU:\n  artifact: {}\n  {why}",
                theirs.settings
            ),
        )),
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn put_traps(out: &mut Vec<u8>, traps: &[(u32, TrapCode)]) {
    out.extend_from_slice(&(traps.len() as u32).to_le_bytes());
    for (offset, code) in traps {
        out.extend_from_slice(&offset.to_le_bytes());
        out.push(code.as_u8());
    }
}

pub(crate) fn write(engine: &Engine, parts: &ArtifactParts, extras: &ArtifactExtras) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.wasm.len() + parts.code.len() + 1024);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    put_bytes(&mut out, engine_fingerprint(engine).as_bytes());
    put_bytes(&mut out, extras.codegen.settings.as_bytes());
    put_bytes(&mut out, extras.codegen.arch.as_bytes());
    out.extend_from_slice(&(extras.codegen.cpu_features.len() as u32).to_le_bytes());
    for feature in &extras.codegen.cpu_features {
        put_bytes(&mut out, feature.as_bytes());
    }
    put_bytes(&mut out, &parts.wasm);
    put_bytes(&mut out, &parts.code);
    out.extend_from_slice(&(parts.functions.len() as u32).to_le_bytes());
    for (start, end) in &parts.functions {
        out.extend_from_slice(&start.to_le_bytes());
        out.extend_from_slice(&end.to_le_bytes());
    }
    put_traps(&mut out, &parts.traps);
    out.extend_from_slice(&(parts.handlers.len() as u32).to_le_bytes());
    for h in &parts.handlers {
        out.extend_from_slice(&h.return_address.to_le_bytes());
        out.extend_from_slice(&h.handler.to_le_bytes());
        out.extend_from_slice(&h.sp_to_fp.to_le_bytes());
    }
    out.extend_from_slice(&(parts.stack_maps.len() as u32).to_le_bytes());
    for m in &parts.stack_maps {
        out.extend_from_slice(&m.return_address.to_le_bytes());
        out.extend_from_slice(&m.frame_size.to_le_bytes());
        out.extend_from_slice(&(m.slots.len() as u32).to_le_bytes());
        for slot in &m.slots {
            out.extend_from_slice(&slot.to_le_bytes());
        }
    }
    out.extend_from_slice(&(parts.libcalls.len() as u32).to_le_bytes());
    for r in &parts.libcalls {
        out.extend_from_slice(&r.offset.to_le_bytes());
        out.extend_from_slice(&r.addend.to_le_bytes());
        put_bytes(&mut out, r.libcall.as_bytes());
    }
    out.extend_from_slice(&(parts.address_map.len() as u32).to_le_bytes());
    for (code_offset, wasm_offset) in &parts.address_map {
        out.extend_from_slice(&code_offset.to_le_bytes());
        out.extend_from_slice(&wasm_offset.to_le_bytes());
    }
    out.extend_from_slice(&(extras.trampolines.len() as u32).to_le_bytes());
    for (type_index, t) in &extras.trampolines {
        out.extend_from_slice(&type_index.to_le_bytes());
        put_bytes(&mut out, &t.code);
        out.extend_from_slice(&t.array_call.to_le_bytes());
        out.extend_from_slice(&t.wasm_to_host.to_le_bytes());
        put_traps(&mut out, &t.traps);
    }
    let sum = checksum(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

fn corrupt(what: &str) -> Error {
    Error::with_kind(
        ErrorKind::Decode,
        format!("invalid compiled artifact: {what}"),
    )
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| corrupt("truncated"))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }
    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let n = usize::try_from(self.u64()?).map_err(|_| corrupt("length"))?;
        self.take(n)
    }
    fn string(&mut self, what: &str) -> Result<String, Error> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| corrupt(what))
    }
    fn traps(&mut self, code_len: usize) -> Result<Vec<(u32, TrapCode)>, Error> {
        let mut traps = Vec::new();
        for _ in 0..self.u32()? {
            let offset = self.u32()?;
            let code = TrapCode::from_u8(self.take(1)?[0]).ok_or_else(|| corrupt("trap code"))?;
            if offset as usize >= code_len {
                return Err(corrupt("trap offset"));
            }
            traps.push((offset, code));
        }
        Ok(traps)
    }
}

/// Checks and decodes an artifact written by an engine with the same fingerprint.
pub(crate) fn read(
    engine: &Engine,
    artifact: &[u8],
) -> Result<(ArtifactParts, ArtifactExtras), Error> {
    if artifact.len() < MAGIC.len() + 12 || &artifact[..8] != MAGIC {
        return Err(corrupt("not a wazerox compiled module"));
    }
    let (body, stored) = artifact.split_at(artifact.len() - 8);
    if checksum(body) != u64::from_le_bytes(stored.try_into().unwrap()) {
        return Err(corrupt("checksum mismatch (truncated or modified)"));
    }
    let mut r = Reader { bytes: body, at: 8 };
    let version = r.u32()?;
    if version != FORMAT_VERSION {
        return Err(corrupt(&format!(
            "format version {version}, this wazerox reads {FORMAT_VERSION}"
        )));
    }
    let theirs = r.bytes()?;
    let ours = engine_fingerprint(engine);
    let their_build = build_id_of(std::str::from_utf8(theirs).unwrap_or(""));
    if their_build != Some(BUILD_ID) {
        return Err(Error::with_kind(
            ErrorKind::Unsupported,
            format!(
                "compiled artifact is from another wazerox build (build id {}, this build {BUILD_ID}); \
                 its code may assume another VM layout: compile the module again",
                their_build.unwrap_or("none")
            ),
        ));
    }
    if theirs != ours.as_bytes() {
        return Err(Error::with_kind(
            ErrorKind::Unsupported,
            format!(
                "compiled artifact is for another engine configuration:\n  artifact: {}\n  engine:   {ours}",
                String::from_utf8_lossy(theirs)
            ),
        ));
    }
    let settings = r.string("code generator settings")?;
    let arch = r.string("architecture")?;
    let mut cpu_features = Vec::new();
    for _ in 0..r.u32()? {
        cpu_features.push(r.string("CPU feature")?);
    }
    let codegen = CodegenTarget {
        settings,
        arch,
        cpu_features,
    };
    check_codegen(engine, &codegen)?;
    let wasm = r.bytes()?.to_vec();
    let code = r.bytes()?.to_vec();
    let mut functions = Vec::new();
    for _ in 0..r.u32()? {
        let (start, end) = (r.u32()?, r.u32()?);
        if start > end || end as usize > code.len() {
            return Err(corrupt("function range"));
        }
        functions.push((start, end));
    }
    let traps = r.traps(code.len())?;
    let mut handlers = Vec::new();
    for _ in 0..r.u32()? {
        let (return_address, handler, sp_to_fp) = (r.u32()?, r.u32()?, r.u32()?);
        if return_address as usize > code.len() || handler as usize >= code.len() {
            return Err(corrupt("exception handler offset"));
        }
        handlers.push(ExceptionHandler {
            return_address,
            handler,
            sp_to_fp,
        });
    }
    let mut stack_maps = Vec::new();
    for _ in 0..r.u32()? {
        let (return_address, frame_size) = (r.u32()?, r.u32()?);
        let mut slots = Vec::new();
        for _ in 0..r.u32()? {
            slots.push(r.u32()?);
        }
        // The collector reads each slot inside the frame: an 8-byte word at or
        // above the call's stack pointer and below its frame pointer.
        if return_address as usize > code.len()
            || slots
                .iter()
                .any(|s| u64::from(*s) + 8 > u64::from(frame_size))
        {
            return Err(corrupt("stack map"));
        }
        stack_maps.push(StackMap {
            return_address,
            frame_size,
            slots,
        });
    }
    let mut libcalls = Vec::new();
    for _ in 0..r.u32()? {
        let offset = r.u32()?;
        let addend = r.u64()? as i64;
        let libcall =
            String::from_utf8(r.bytes()?.to_vec()).map_err(|_| corrupt("libcall name"))?;
        if offset as usize + 8 > code.len() {
            return Err(corrupt("relocation offset"));
        }
        libcalls.push(LibcallRelocation {
            offset,
            libcall,
            addend,
        });
    }
    let mut address_map = Vec::new();
    for _ in 0..r.u32()? {
        let (code_offset, wasm_offset) = (r.u32()?, r.u32()?);
        if code_offset as usize >= code.len()
            || address_map
                .last()
                .is_some_and(|&(last, _)| last > code_offset)
        {
            return Err(corrupt("address map"));
        }
        address_map.push((code_offset, wasm_offset));
    }
    let mut trampolines = Vec::new();
    for _ in 0..r.u32()? {
        let type_index = r.u32()?;
        let code = r.bytes()?.to_vec();
        let (array_call, wasm_to_host) = (r.u32()?, r.u32()?);
        if array_call as usize >= code.len() || wasm_to_host as usize >= code.len() {
            return Err(corrupt("trampoline offset"));
        }
        let traps = r.traps(code.len())?;
        trampolines.push((
            type_index,
            SignatureTrampolinesCode {
                code,
                array_call,
                wasm_to_host,
                traps,
            },
        ));
    }
    if r.at != body.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok((
        ArtifactParts {
            wasm,
            code,
            functions,
            traps,
            handlers,
            stack_maps,
            libcalls,
            address_map,
        },
        ArtifactExtras {
            codegen,
            trampolines,
        },
    ))
}

#[cfg(all(test, feature = "cranelift"))]
mod tests {
    use super::*;

    /// An artifact whose fingerprint names another build (or none), with a correct
    /// checksum, as a stale or foreign `.cwasm` has.
    fn with_build_id(artifact: &[u8], id: Option<&str>) -> Vec<u8> {
        let body = &artifact[..artifact.len() - 8];
        let mut r = Reader {
            bytes: body,
            at: 12,
        };
        let fingerprint = std::str::from_utf8(r.bytes().unwrap()).unwrap().to_string();
        let rest = &body[r.at..];
        let ours = format!("{BUILD_ID_KEY}{BUILD_ID} ");
        assert!(fingerprint.contains(&ours), "{fingerprint}");
        let replacement = id.map_or(String::new(), |id| format!("{BUILD_ID_KEY}{id} "));
        let forged = fingerprint.replace(&ours, &replacement);
        let mut out = body[..12].to_vec();
        put_bytes(&mut out, forged.as_bytes());
        out.extend_from_slice(rest);
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    #[test]
    fn artifacts_of_another_build_are_refused() {
        let engine = Engine::default();
        let module =
            crate::Module::new(&engine, &b"\0asm\x01\0\0\0"[..]).expect("empty module compiles");
        let artifact = module.serialize();
        assert!(read(&engine, &artifact).is_ok());
        assert!(read(&engine, &with_build_id(&artifact, Some(BUILD_ID))).is_ok());
        for id in [Some("0123456789abcdef"), None] {
            let error = read(&engine, &with_build_id(&artifact, id))
                .err()
                .expect("another build's artifact is refused");
            assert_eq!(error.kind(), ErrorKind::Unsupported);
            assert!(
                error.to_string().contains("another wazerox build"),
                "{error}"
            );
        }
    }
}
