//! `hostile/OtherWorld`: a component of another world (`flowd-test:other/other`, in this crate's
//! `wit/`), exporting only `hello: func() -> string`. flowd must reject it at load time.

wit_bindgen::generate!({ path: "wit", world: "other" });

struct OtherWorld;

impl Guest for OtherWorld {
    fn hello() -> String {
        "hello from another world".into()
    }
}

export!(OtherWorld);
